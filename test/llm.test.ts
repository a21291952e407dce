import { ApplicationFailure } from '@temporalio/common';
import { createLlmClient, createLlmClients } from '../src/llm/client';
import { classifyLlmError, redact, retryAfterMs } from '../src/llm/errors';
import { escapeControlCharsInStrings, extractJson, responseJsonSchema } from '../src/llm/json';
import { LlmFailure } from '../src/llm/types';
import { forgetDialects } from '../src/llm/dialect';
import { resolvedConfigSchema, type ResolvedRole } from '../src/schemas/config';
import { startSimulator, type ScriptItem, type Simulator } from '../src/sim';
import { answerTargetTask, encodeTask, judgeTask } from '../src/tasks';
import { simRole } from './helpers/config';

/** The LLM boundary against the real simulator over HTTP. */

const KEY = 'sk-test-SECRET-123';
const env = { CODECLM_TEST_KEY: KEY };
const encodeSlots = {
  instruction: 'Write a Python function that removes duplicates from a list.',
  max_skills: '3',
};

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 5 });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(async () => {
  forgetDialects();
  await control('/_sim/reset', {});
});

async function control(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${sim.url.replace(/\/v1$/, '')}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}
const script = (items: ScriptItem[]) => control('/_sim/script', items);

const role = (over: Partial<ResolvedRole> = {}): ResolvedRole => simRole(sim.url, over);

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  // Whatever went wrong, the key never shows.
  expect(`${f.message}\n${f.stack}\n${JSON.stringify(f.details)}`).not.toContain(KEY);
  return f;
}

describe('structured output', () => {
  test('json_schema mode returns the validated value and counts the call', async () => {
    const client = createLlmClient('strong', role(), env);
    const r = await client.structured(encodeTask, encodeSlots);
    expect(r.value.use_case).toBe('software development');
    expect(r.usage.calls).toBe(1);
    expect(r.usage.promptTokens).toBeGreaterThan(10);
    expect(r.usage.completionTokens).toBeGreaterThan(0);
  });

  test.each(['json_object', 'text'] as const)('%s mode reads fenced and chatty JSON', async (mode) => {
    const client = createLlmClient('strong', role({ structuredOutput: mode }), env);
    await script([{ malformed: 'fenced' }, { malformed: 'chatty' }]);
    const fenced = await client.structured(encodeTask, encodeSlots);
    const chatty = await client.structured(encodeTask, encodeSlots);
    expect(fenced.value).toEqual(chatty.value);
    expect(fenced.usage.calls).toBe(1);
    expect(chatty.usage.calls).toBe(1);
    // The simulator saw a JSON task, not an answer request: the appended schema note did not hide it.
    expect(sim.requests().map((r) => r.task)).toEqual(['codeclm_encode', 'codeclm_encode']);
  });

  test('broken JSON, then schema-invalid JSON, then a repaired reply', async () => {
    const client = createLlmClient('judge', role(), env);
    await script([{ malformed: 'broken' }, { content: '{"score_a": 11, "score_b": "high"}' }]);
    const r = await client.structured(judgeTask, {
      instruction: 'Say hi.',
      answer_a: 'Hi!',
      answer_b: 'Hello there, hi!',
    });
    expect(r.value.score_a).toBeGreaterThanOrEqual(1);
    expect(r.usage.calls).toBe(3);
    expect(sim.requests()).toHaveLength(3);
  });

  test('a truncated reply is repaired, not kept', async () => {
    const client = createLlmClient('strong', role(), env);
    await script([{ truncate: true }]);
    const r = await client.structured(encodeTask, encodeSlots);
    expect(r.value.skills.length).toBeGreaterThan(0);
    expect(r.usage.calls).toBe(2);
  });

  test('still invalid after the repairs: LlmInvalidOutput naming role, model, task and error', async () => {
    const client = createLlmClient('strong', role(), env, { repairAttempts: 1 });
    await script([{ malformed: 'broken' }, { content: '{"use_case": ""}' }]);
    const f = await failure(client.structured(encodeTask, encodeSlots, { label: 'seed s-1' }));
    expect(f.type).toBe(LlmFailure.InvalidOutput);
    // Outside an activity there is no attempt count to spend: final.
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('strong');
    expect(f.message).toContain('sim-strong');
    expect(f.message).toContain('codeclm_encode');
    expect(f.message).toContain('seed s-1');
    expect(f.message).toMatch(/schema|skills/);
    expect(f.details).toEqual([{ usage: expect.objectContaining({ calls: 2 }) }]);
  });
});

describe('text output', () => {
  test('plain answer; finish_reason "length" is repaired with a shorter answer', async () => {
    const client = createLlmClient('target', role({ model: 'sim-target', maxTokens: 30 }), env);
    const r = await client.text(answerTargetTask, {
      instruction: 'Plan three days in Lisbon with a budget for a student.',
    });
    expect(r.usage.calls).toBe(2);
    expect(r.value.length).toBeLessThanOrEqual(120);
    expect(r.value.length).toBeGreaterThan(0);
    const roomy = createLlmClient('target', role({ model: 'sim-target' }), env);
    expect(
      (await roomy.text(answerTargetTask, { instruction: 'Plan three days in Lisbon.' })).usage.calls,
    ).toBe(1);
  });

  test('always cut: LlmInvalidOutput', async () => {
    const client = createLlmClient('target', role({ model: 'sim-target' }), env, { repairAttempts: 1 });
    await script([{ truncate: true }, { truncate: true }]);
    const f = await failure(client.text(answerTargetTask, { instruction: 'Plan three days in Lisbon.' }));
    expect(f.type).toBe(LlmFailure.InvalidOutput);
    expect(f.message).toMatch(/cut off/);
  });
});

describe('error classification', () => {
  // Explicit json_schema: auto mode would answer a 400 by trying the next dialect (test/dialect.test.ts).
  const client = () => createLlmClient('strong', role({ structuredOutput: 'json_schema' }), env);

  test('429 with Retry-After: retryable LlmRateLimited with nextRetryDelay', async () => {
    await script([
      { status: 429, retryAfter: 3 },
      { status: 429, retryAfterMs: 250 },
      { status: 429, retryAfter: 100000 },
    ]);
    const a = await failure(client().structured(encodeTask, encodeSlots));
    expect(a.type).toBe(LlmFailure.RateLimited);
    expect(a.nonRetryable).toBe(false);
    expect(a.nextRetryDelay).toBe(3000);
    expect((await failure(client().structured(encodeTask, encodeSlots))).nextRetryDelay).toBe(250);
    expect((await failure(client().structured(encodeTask, encodeSlots))).nextRetryDelay).toBe(5 * 60_000);
  });

  test('Retry-After as an HTTP date, and the 1 s default', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7000);
    expect(retryAfterMs(new Headers({}), now)).toBeUndefined();
  });

  test.each([500, 503])('%i: retryable LlmUnavailable', async (status) => {
    await script([{ status }]);
    const f = await failure(client().structured(encodeTask, encodeSlots));
    expect(f.type).toBe(LlmFailure.Unavailable);
    expect(f.nonRetryable).toBe(false);
    // The server answered: the request counts (no tokens reported).
    expect(f.details).toEqual([{ usage: { calls: 1, promptTokens: 0, completionTokens: 0 } }]);
  });

  test('a 5xx whose body is a request-validation error: non-retryable LlmRejected with its message', async () => {
    const message =
      "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required'}";
    await script([{ status: 500, message }]);
    const f = await failure(client().structured(encodeTask, encodeSlots));
    expect(f.type).toBe(LlmFailure.Rejected);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('Field required');
    expect(f.message).toContain('HTTP 500');
  });

  test('connection reset: retryable LlmConnection', async () => {
    await script([{ reset: true }]);
    const f = await failure(client().structured(encodeTask, encodeSlots));
    expect(f.type).toBe(LlmFailure.Connection);
    expect(f.nonRetryable).toBe(false);
    // Nothing answered: nothing to count.
    expect(f.details ?? []).toEqual([]);
  });

  test('timeout: retryable LlmConnection', async () => {
    await script([{ delayMs: 2000 }]);
    const f = await failure(
      createLlmClient('strong', role({ timeoutMs: 200 }), env).structured(encodeTask, encodeSlots),
    );
    expect(f.type).toBe(LlmFailure.Connection);
    expect(f.message).toMatch(/timed out/);
    // The server got the request and works it to the end (and bills it): it counts as a call.
    expect(f.details).toEqual([{ usage: expect.objectContaining({ calls: 1 }) }]);
  });

  test('connection refused: retryable LlmConnection', async () => {
    const gone = await startSimulator();
    const url = gone.url;
    await gone.close();
    const f = await failure(
      createLlmClient('strong', role({ baseURL: url }), env).structured(encodeTask, encodeSlots),
    );
    expect(f.type).toBe(LlmFailure.Connection);
    // Nothing reached a server: no call to count.
    expect(f.details ?? []).toEqual([]);
  });

  test('400: non-retryable LlmRejected naming role, model and endpoint; the key never shows', async () => {
    await script([{ status: 400 }, { status: 401, message: `Incorrect API key provided: ${KEY}` }]);
    const f = await failure(client().structured(encodeTask, encodeSlots));
    expect(f.type).toBe(LlmFailure.Rejected);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('strong');
    expect(f.message).toContain('"sim-strong"');
    expect(f.message).toContain(sim.url);
    const auth = await failure(client().structured(encodeTask, encodeSlots));
    expect(auth.type).toBe(LlmFailure.Rejected);
    expect(auth.message).toContain('[redacted]');
  });

  test('context length: non-retryable LlmContextLength', async () => {
    await script([
      {
        status: 400,
        code: 'context_length_exceeded',
        message: "This model's maximum context length is 8192 tokens.",
      },
    ]);
    const f = await failure(client().structured(encodeTask, encodeSlots));
    expect(f.type).toBe(LlmFailure.ContextLength);
    expect(f.nonRetryable).toBe(true);
  });

  test('an abort signal cancels the request in flight and rethrows the abort', async () => {
    const slow = await startSimulator({ latencyMs: 5000 });
    try {
      const c = createLlmClient('strong', role({ baseURL: slow.url }), env);
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(new Error('cancelled by test')), 100);
      await expect(c.structured(encodeTask, encodeSlots, { signal: controller.signal })).rejects.toThrow(
        'cancelled by test',
      );
      expect(Date.now() - started).toBeLessThan(2000);
      // Already aborted: no HTTP call at all.
      await expect(
        c.text(answerTargetTask, { instruction: 'hi' }, { signal: controller.signal }),
      ).rejects.toThrow('cancelled by test');
    } finally {
      await slow.close();
    }
  });

  test('an unexpected error is classified retryable and redacted', () => {
    const f = classifyLlmError(new Error(`boom ${KEY}`), {
      role: 'judge',
      model: 'm',
      baseURL: 'http://u:p@host/v1',
      task: 't',
      secrets: [KEY],
    });
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect(f.message).not.toContain(KEY);
    expect(f.message).not.toContain('u:p@');
    expect(redact(`Bearer ${KEY}`)).toBe('Bearer [redacted]');
  });
});

describe('helpers', () => {
  test('extractJson finds the first JSON value in chatty, fenced or trailing text', () => {
    expect(extractJson('{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(extractJson('Sure!\n```json\n{"a": "}"}\n```\nanything else?')).toEqual({
      ok: true,
      value: { a: '}' },
    });
    expect(extractJson('Result: [1, 2] and that is all {not json}')).toEqual({ ok: true, value: [1, 2] });
    expect(extractJson('Here: {"a": {"b": [1, {"c": "x\\"y"}]}} Hope it helps.')).toEqual({
      ok: true,
      value: { a: { b: [1, { c: 'x"y' }] } },
    });
    expect(extractJson('{"a": 1, "b": [').ok).toBe(false);
    expect(extractJson('   ').ok).toBe(false);
  });

  test('response schema is closed, fully required, without keywords strict mode rejects', () => {
    const s = responseJsonSchema(encodeTask.output);
    expect(JSON.stringify(s)).not.toMatch(/minLength|maxLength|\$schema/);
    expect(s).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: ['use_case', 'skills'],
    });
  });

  test('createLlmClients builds one client per role with the config repair budget', () => {
    const r = role();
    const cfg = resolvedConfigSchema.parse({
      roles: { strong: r, target: { ...r, model: 'sim-target' }, judge: r },
      method: {},
      limits: { repairAttempts: 0 },
    });
    const clients = createLlmClients(cfg, env);
    expect(clients.target.model).toBe('sim-target');
    expect(clients.judge.role).toBe('judge');
  });
});

describe('lenient JSON: raw control characters inside strings', () => {
  it('escapes line breaks and tabs inside strings, leaves the rest alone', () => {
    const raw = '{"instruction": "Write a poem.\nMake it rhyme.\tPlease", "n": 2}';
    expect(extractJson(raw)).toEqual({
      ok: true,
      value: { instruction: 'Write a poem.\nMake it rhyme.\tPlease', n: 2 },
    });
    expect(escapeControlCharsInStrings('{\n  "a": "x\\"y\nz"\n}')).toBe('{\n  "a": "x\\"y\\nz"\n}');
  });

  it('still reports JSON that is broken in other ways', () => {
    const r = extractJson('{"a": "line\nbreak", }');
    expect(r.ok).toBe(false);
  });
});
