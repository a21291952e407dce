import { LlmFailure } from '../src/llm/types';
import { methodSchema } from '../src/schemas/config';
import { startSimulator, type ScriptItem, type Simulator } from '../src/sim';
import { uniqueQueue } from './helpers/env';
import { simRole } from './helpers/config';
import { startActivityTestWorker, type TestWorker } from './helpers/pipeline';
import type { LlmCallOutcome } from './workflows/llmCall';

/**
 * Fault classes through a real Temporal worker running the project's real activities (the `judge`
 * activity, src/activities) with the real LLM client against the simulator.
 */
const KEY = 'sk-test-SECRET-123';
let sim: Simulator;
/** Speaks llama-cpp-python's dialect: refuses json_schema with HTTP 500 and a validation error. */
let llamaSim: Simulator;
let t: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 9 });
  llamaSim = await startSimulator({ port: 0, seed: 9, dialect: 'llama-cpp-python' });
  t = await startActivityTestWorker({
    name: 'llm',
    workflowsPath: require.resolve('./workflows/llmCall'),
    env: { CODECLM_TEST_KEY: KEY },
  });
});

afterAll(async () => {
  await t?.stop();
  await sim?.close();
  await llamaSim?.close();
});

beforeEach(async () => {
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/reset`, { method: 'POST' });
  await fetch(`${llamaSim.url.replace(/\/v1$/, '')}/_sim/reset`, { method: 'POST' });
});

async function script(items: ScriptItem[]): Promise<void> {
  const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify(items),
  });
  expect(res.status).toBe(200);
}

async function judgeOnce(over: Record<string, unknown> = {}): Promise<LlmCallOutcome> {
  const judge = simRole(sim.url, { model: 'sim-judge', ...over });
  return t.client.workflow.execute('llmCallWorkflow', {
    taskQueue: t.taskQueue,
    workflowId: uniqueQueue('llm-call'),
    args: [
      {
        judge,
        method: methodSchema.parse({}),
        instruction: 'Plan three days in Lisbon.',
        answerA:
          'Day 1: Alfama and the castle. Day 2: Belém and the river. Day 3: Sintra. Plan three days in Lisbon this way.',
        answerB: 'It depends.',
        label: 'test judge',
      },
    ],
  });
}

test('429 with Retry-After: the next attempt waits at least that long, then succeeds', async () => {
  await script([{ status: 429, retryAfter: 2 }]);
  const out = await judgeOnce();
  expect(out).toMatchObject({ ok: true });
  const log = sim.requests();
  expect(log.map((r) => r.status)).toEqual([429, 200]);
  const gap = Date.parse(log[1]!.time) - Date.parse(log[0]!.time);
  // The policy's own interval is 100 ms: only the server's Retry-After explains a 2 s gap.
  expect(gap).toBeGreaterThanOrEqual(1950);
});

test('5xx is retried until the endpoint recovers', async () => {
  await script([{ status: 500 }, { status: 503 }]);
  const out = await judgeOnce();
  expect(out).toMatchObject({ ok: true });
  expect(sim.requests().map((r) => r.status)).toEqual([500, 503, 200]);
});

test('400 fails the activity at once, naming role, model and endpoint, never the key', async () => {
  await script([{ status: 400, message: `bad request for key ${KEY}` }]);
  // Explicit dialect: in auto mode an undecided endpoint would answer a 400 with the next dialect.
  const out = await judgeOnce({ structuredOutput: 'json_schema' });
  expect(out.ok).toBe(false);
  if (out.ok) return;
  expect(out.type).toBe(LlmFailure.Rejected);
  expect(out.nonRetryable).toBe(true);
  expect(out.message).toContain('judge');
  expect(out.message).toContain('"sim-judge"');
  expect(out.message).toContain(sim.url);
  expect(out.message).not.toContain(KEY);
  expect(sim.requests()).toHaveLength(1);
});

test('invalid output is retried by Temporal for a bounded number of attempts, then fails for good', async () => {
  // 3 calls per attempt (1 + 2 repairs); attempt 2 of maxInvalidAttempts 2 makes it final.
  await script(Array.from({ length: 10 }, () => ({ malformed: 'broken' as const })));
  const out = await judgeOnce();
  expect(out).toMatchObject({ ok: false, type: LlmFailure.InvalidOutput, nonRetryable: true });
  expect(sim.requests()).toHaveLength(6);
});

test('a request the server rejects as malformed (HTTP 500 validation error) fails the item at once with its message', async () => {
  // Explicit json_schema against a llama-cpp-python-like server: no dialect to fall back to.
  const out = await judgeOnce({ baseURL: llamaSim.url, structuredOutput: 'json_schema' });
  expect(out.ok).toBe(false);
  if (out.ok) return;
  expect(out.type).toBe(LlmFailure.Rejected);
  expect(out.nonRetryable).toBe(true);
  expect(out.message).toContain("Input should be 'text' or 'json_object'");
  expect(out.message).toContain('judge');
  expect(out.message).toContain('"sim-judge"');
  expect(out.message).toContain(llamaSim.url);
  // One request: not retried (the policy would allow 6 attempts).
  expect(llamaSim.requests().map((r) => r.status)).toEqual([500]);
});

test('auto against the same server steps down to json_object with the schema and succeeds', async () => {
  const out = await judgeOnce({ baseURL: llamaSim.url });
  expect(out).toMatchObject({ ok: true });
  expect(llamaSim.requests().map((r) => `${r.format} ${r.status}`)).toEqual([
    'json_schema 500',
    'json_object_schema 200',
  ]);
});
