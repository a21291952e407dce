import { ApplicationFailure } from '@temporalio/common';
import { createLlmClient } from '../src/llm/client';
import { forgetDialects, knownDialect } from '../src/llm/dialect';
import { LlmFailure } from '../src/llm/types';
import type { ResolvedRole } from '../src/schemas/config';
import { startSimulator, type ScriptItem, type SimDialect, type Simulator } from '../src/sim';
import { encodeTask } from '../src/tasks';
import { dialectLines } from '../src/report/dialects';
import { renderReportMarkdown } from '../src/report/build';
import { addUsage } from '../src/schemas/records';
import { fixtureReport } from './report.fixture';
import { simRole } from './helpers/config';

/**
 * `structuredOutput: "auto"` against simulators speaking other servers' dialects: each fallback
 * path, decided from the server's own answers, remembered per endpoint and model, and counted.
 */
const env = { CODECLM_TEST_KEY: 'sk-test-dialect-123' };
const slots = {
  instruction: 'Write a Python function that removes duplicates from a list.',
  max_skills: '3',
};
const sims: Partial<Record<SimDialect, Simulator>> = {};

beforeAll(async () => {
  for (const dialect of ['openai', 'llama-cpp-python', 'json-object-only', 'prompt-only'] as const)
    sims[dialect] = await startSimulator({ port: 0, seed: 4, dialect });
});
afterAll(async () => {
  for (const sim of Object.values(sims)) await sim.close();
});
beforeEach(async () => {
  forgetDialects();
  for (const sim of Object.values(sims))
    await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/reset`, { method: 'POST' });
});

const role = (sim: Simulator, over: Partial<ResolvedRole> = {}): ResolvedRole => simRole(sim.url, over);
const seen = (sim: Simulator) => sim.requests().map((r) => `${r.format ?? 'none'} ${r.status}`);

test('auto is the default and takes json_schema where the server does', async () => {
  const sim = sims.openai!;
  expect(role(sim).structuredOutput).toBe('auto');
  const r = await createLlmClient('strong', role(sim), env).structured(encodeTask, slots);
  expect(r.usage).toMatchObject({ calls: 1, dialect: 'json_schema' });
  expect(seen(sim)).toEqual(['json_schema 200']);
});

test('llama-cpp-python: json_schema refused (HTTP 500 validation error) -> json_object with the schema, remembered', async () => {
  const sim = sims['llama-cpp-python']!;
  const client = createLlmClient('strong', role(sim), env);
  const first = await client.structured(encodeTask, slots);
  expect(first.value.skills.length).toBeGreaterThan(0);
  // The refused probe is a request the server answered: counted.
  expect(first.usage).toMatchObject({ calls: 2, dialect: 'json_object_schema' });
  expect(seen(sim)).toEqual(['json_schema 500', 'json_object_schema 200']);
  expect(knownDialect(sim.url, 'sim-strong')).toBe('json_object_schema');
  // Decided: later calls (any client of this worker process) go straight to it.
  const again = await createLlmClient('judge', role(sim), env).structured(encodeTask, slots);
  expect(again.usage).toMatchObject({ calls: 1, dialect: 'json_object_schema' });
  expect(seen(sim).slice(2)).toEqual(['json_object_schema 200']);
});

test('json_object with a schema refused too (422) -> json_object', async () => {
  const sim = sims['json-object-only']!;
  const r = await createLlmClient('strong', role(sim), env).structured(encodeTask, slots);
  expect(r.usage).toMatchObject({ calls: 3, dialect: 'json_object' });
  expect(seen(sim)).toEqual(['json_schema 400', 'json_object_schema 422', 'json_object 200']);
});

test('every response_format refused -> JSON asked for in the prompt', async () => {
  const sim = sims['prompt-only']!;
  const r = await createLlmClient('strong', role(sim), env).structured(encodeTask, slots);
  expect(r.value.use_case).toBeTruthy();
  expect(r.usage).toMatchObject({ calls: 4, dialect: 'text' });
  expect(seen(sim)).toEqual(['json_schema 400', 'json_object_schema 400', 'json_object 400', 'none 200']);
});

test('concurrent first calls probe once, not once each', async () => {
  const sim = sims['llama-cpp-python']!;
  const client = createLlmClient('strong', role(sim), env);
  const results = await Promise.all(Array.from({ length: 6 }, () => client.structured(encodeTask, slots)));
  expect(results.map((r) => r.usage.dialect)).toEqual(Array(6).fill('json_object_schema'));
  expect(seen(sim).filter((s) => s === 'json_schema 500')).toHaveLength(1);
  expect(results.reduce((n, r) => n + r.usage.calls, 0)).toBe(sim.requests().length);
});

test('an explicit setting wins: json_schema against llama-cpp-python fails fast with the server message', async () => {
  const sim = sims['llama-cpp-python']!;
  const err = await createLlmClient('strong', role(sim, { structuredOutput: 'json_schema' }), env)
    .structured(encodeTask, slots)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe(LlmFailure.Rejected);
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toContain('HTTP 500');
  expect(f.message).toContain("Input should be 'text' or 'json_object'");
  expect(f.message).toContain('strong');
  expect(f.message).toContain('"sim-strong"');
  expect(f.message).toContain(sim.url);
  expect(f.details).toEqual([{ usage: expect.objectContaining({ calls: 1 }) }]);
  expect(sim.requests()).toHaveLength(1);
  // And the explicit llama-cpp-python dialect works in one call.
  const ok = await createLlmClient(
    'strong',
    role(sim, { structuredOutput: 'json_object_schema' }),
    env,
  ).structured(encodeTask, slots);
  expect(ok.usage).toMatchObject({ calls: 1, dialect: 'json_object_schema' });
});

test('refused in every dialect: non-retryable, with the last server message, nothing remembered', async () => {
  const sim = sims.openai!;
  const script: ScriptItem[] = Array.from({ length: 4 }, () => ({
    status: 400,
    message: 'unknown field "foo"',
  }));
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify(script),
  });
  const f = (await createLlmClient('strong', role(sim), env)
    .structured(encodeTask, slots)
    .catch((e: unknown) => e)) as ApplicationFailure;
  expect(f.type).toBe(LlmFailure.Rejected);
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toContain('unknown field "foo"');
  expect(f.message).toMatch(
    /refused in every structured-output dialect tried: json_schema, json_object_schema, json_object, text/,
  );
  expect(f.details).toEqual([{ usage: expect.objectContaining({ calls: 4 }) }]);
  expect(knownDialect(sim.url, 'sim-strong')).toBeUndefined();
});

test('a plain 5xx is an outage, not a dialect: retryable, no fallback', async () => {
  const sim = sims.openai!;
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify([{ status: 500 }]),
  });
  const f = (await createLlmClient('strong', role(sim), env)
    .structured(encodeTask, slots)
    .catch((e: unknown) => e)) as ApplicationFailure;
  expect(f.type).toBe(LlmFailure.Unavailable);
  expect(f.nonRetryable).toBe(false);
  expect(seen(sim)).toEqual(['json_schema 500']);
  expect(f.details).toEqual([{ usage: expect.objectContaining({ calls: 1 }) }]);
});

test('once decided, a malformed-request refusal fails fast instead of stepping down', async () => {
  const sim = sims.openai!;
  const client = createLlmClient('strong', role(sim), env);
  await client.structured(encodeTask, slots);
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify([{ status: 422, message: 'messages: too many' }]),
  });
  const f = (await client.structured(encodeTask, slots).catch((e: unknown) => e)) as ApplicationFailure;
  expect(f.type).toBe(LlmFailure.Rejected);
  expect(f.message).toContain('messages: too many');
  expect(sim.requests()).toHaveLength(2);
  expect(knownDialect(sim.url, 'sim-strong')).toBe('json_schema');
});

describe('the dialect in status and report.md', () => {
  const usage = {
    'encode/strong': {
      calls: 3,
      promptTokens: 30,
      completionTokens: 9,
      dialect: 'json_object_schema' as const,
      dialectAuto: true,
    },
    'answer/target': { calls: 2, promptTokens: 20, completionTokens: 40 },
    'judge/judge': { calls: 4, promptTokens: 40, completionTokens: 8, dialect: 'json_schema' as const },
  };

  test('status: a line per role that made structured calls, saying who chose the dialect', () => {
    expect(dialectLines(usage)).toEqual([
      'strong: structured output: json_object_schema (auto)',
      'judge: structured output: json_schema (configured)',
    ]);
  });

  test('usage merging keeps the latest dialect of a cell', () => {
    const merged = addUsage(structuredClone(usage), {
      'encode/strong': { calls: 1, promptTokens: 1, completionTokens: 1, dialect: 'text', dialectAuto: true },
    });
    expect(merged['encode/strong']).toMatchObject({ calls: 4, dialect: 'text', dialectAuto: true });
  });

  test('report.md: a structured-output column in the roles table', () => {
    const report = fixtureReport();
    report.usage.per_stage_role = usage;
    const md = renderReportMarkdown(report);
    expect(md).toContain('structured output');
    expect(md).toMatch(/\| strong \|.*\| json_object_schema \(auto\) \|/);
    expect(md).toMatch(/\| target \|.*\| no structured calls \|/);
  });
});
