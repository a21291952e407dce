import OpenAI from 'openai';
import { createLlmClient } from '../src/llm/client';
import type { BatchSend } from '../src/llm/batchClient';
import { forgetDialects, knownDialect } from '../src/llm/dialect';
import type { ResolvedRole } from '../src/schemas/config';
import { startSimulator, type Simulator } from '../src/sim';
import { encodeTask } from '../src/tasks';
import { freePort } from '../src/temporal/devServer';
import { simRole } from './helpers/config';

/**
 * `structuredOutput: "auto"` in batch mode: one online probe (the request cut to one output token)
 * decides the dialect per endpoint and model before any batch line is written, and every line uses
 * it. The batch transport is a stand-in that answers each line from a second simulator of the same
 * dialect (the real one, through the batcher workflow, is in test/eval.batch.test.ts); the online
 * simulator sees only the probe.
 */
const env = { CODECLM_TEST_KEY: 'sk-test-dialect-batch' };
const slots = {
  instruction: 'Write a Python function that removes duplicates from a list.',
  max_skills: '3',
};
const sims: Simulator[] = [];

async function sim(dialect: 'json-object-only' | 'llama-cpp-python'): Promise<Simulator> {
  const s = await startSimulator({ port: 0, seed: 4, dialect });
  sims.push(s);
  return s;
}
afterAll(async () => {
  for (const s of sims) await s.close();
});
beforeEach(() => forgetDialects());

/** Batch lines answered by `lines` (a refusal is the SDK's APIError, as the batch client gives). */
function batchOf(lines: Simulator): { send: BatchSend; formats: string[] } {
  const sdk = new OpenAI({ baseURL: lines.url, apiKey: 'sk-sim', maxRetries: 0 });
  const formats: string[] = [];
  const send: BatchSend = async (params) => {
    const rf = params.response_format as { type: string; schema?: unknown } | undefined;
    formats.push(!rf ? 'none' : rf.type === 'json_object' && rf.schema ? 'json_object_schema' : rf.type);
    return { completion: await sdk.chat.completions.create(params), replayed: false };
  };
  return { send, formats };
}

const batchRole = (url: string): ResolvedRole => simRole(url, { mode: 'batch' });
const seen = (s: Simulator) => s.requests().map((r) => `${r.format ?? 'none'} ${r.status}`);

test('concurrent first calls: one online probe in each dialect until one is taken, every batch line in it', async () => {
  const online = await sim('json-object-only');
  const batch = batchOf(await sim('json-object-only'));
  const client = createLlmClient('judge', batchRole(online.url), env, { batchSend: batch.send });
  const results = await Promise.all(Array.from({ length: 6 }, () => client.structured(encodeTask, slots)));

  expect(seen(online)).toEqual(['json_schema 400', 'json_object_schema 422', 'json_object 200']);
  // Cut to one output token: the probe costs its prompt, not an answer.
  expect(online.stats().completionTokens).toBeLessThanOrEqual(1);
  expect(batch.formats).toEqual(Array(6).fill('json_object'));
  expect(knownDialect(online.url, 'sim-strong')).toBe('json_object');
  expect(results.map((r) => r.usage.dialect)).toEqual(Array(6).fill('json_object'));
  // The probe's three requests are online calls of the call that made them; the rest batch calls.
  expect(results.reduce((n, r) => n + r.usage.calls, 0)).toBe(3 + 6);
  expect(results.reduce((n, r) => n + (r.usage.batchCalls ?? 0), 0)).toBe(6);
});

test('a dialect already decided online is used at once: no probe', async () => {
  const online = await sim('llama-cpp-python');
  await createLlmClient('strong', simRole(online.url), env).structured(encodeTask, slots);
  expect(seen(online)).toEqual(['json_schema 500', 'json_object_schema 200']);
  const batch = batchOf(await sim('llama-cpp-python'));
  const r = await createLlmClient('judge', batchRole(online.url), env, { batchSend: batch.send }).structured(
    encodeTask,
    slots,
  );
  expect(seen(online)).toHaveLength(2);
  expect(batch.formats).toEqual(['json_object_schema']);
  expect(r.usage).toMatchObject({ calls: 1, batchCalls: 1, dialect: 'json_object_schema' });
});

test('the probe cannot reach the endpoint: each call steps down through the dialects in its batches', async () => {
  const down = `http://127.0.0.1:${await freePort()}/v1`;
  const batch = batchOf(await sim('llama-cpp-python'));
  const r = await createLlmClient('judge', batchRole(down), env, { batchSend: batch.send }).structured(
    encodeTask,
    slots,
  );
  expect(batch.formats).toEqual(['json_schema', 'json_object_schema']);
  expect(r.usage).toMatchObject({ dialect: 'json_object_schema', batchCalls: 2 });
  // The line the server took decides it for the calls after.
  expect(knownDialect(down, 'sim-strong')).toBe('json_object_schema');
});
