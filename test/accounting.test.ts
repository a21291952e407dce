import fs from 'node:fs';
import path from 'node:path';
import { LlmFailure } from '../src/llm/types';
import { methodSchema } from '../src/schemas/config';
import { startSimulator, type ScriptItem, type Simulator } from '../src/sim';
import { codeclmRun } from '../src/workflows/pipeline';
import type { Report } from '../src/report/build';
import { simConfig, simRole } from './helpers/config';
import { startActivityTestWorker, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir, uniqueQueue } from './helpers/env';
import type { LlmUsageOutcome } from './workflows/llmUsage';

/**
 * Honest accounting: every request the provider answered is counted, also those of activity
 * attempts that failed (carried to the next attempt in heartbeat details, and to the workflow in
 * the final failure's details). The simulator's own request count is the truth.
 */
let sim: Simulator;
let t: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11 });
  t = await startActivityTestWorker({
    name: 'accounting',
    workflowsPath: require.resolve('./workflows/llmUsage'),
    env: { CODECLM_TEST_KEY: 'not-a-real-key' },
    // The production heartbeat mechanism (src/activities/attemptUsage.ts), as createWorker installs it.
    heartbeat: true,
  });
});

afterAll(async () => {
  await t?.stop();
  await sim?.close();
});

beforeEach(async () => {
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/reset`, { method: 'POST' });
});

async function script(items: ScriptItem[]): Promise<void> {
  const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify(items),
  });
  expect(res.status).toBe(200);
}

function judgeOnce(): Promise<LlmUsageOutcome> {
  const judge = simRole(sim.url, { model: 'sim-judge', structuredOutput: 'json_schema' });
  return t.client.workflow.execute('llmUsageWorkflow', {
    taskQueue: t.taskQueue,
    workflowId: uniqueQueue('usage'),
    args: [
      {
        judge,
        method: methodSchema.parse({}),
        instruction: 'Plan three days in Lisbon.',
        answerA: 'Day 1: Alfama. Day 2: Belém. Day 3: Sintra. Plan three days in Lisbon this way.',
        answerB: 'It depends.',
        label: 'accounting judge',
      },
    ],
  });
}

test('5xx twice, then success: three requests served, three calls counted', async () => {
  await script([{ status: 500 }, { status: 503 }]);
  const out = await judgeOnce();
  expect(out.ok).toBe(true);
  expect(sim.requests().map((r) => r.status)).toEqual([500, 503, 200]);
  expect(out.calls).toBe(3);
  expect(out.usage['judge/judge']?.dialect).toBe('json_schema');
});

test('invalid output, a repair that hits a 5xx, then a new attempt: every request counted', async () => {
  // Attempt 1: broken JSON (1), its repair gets a 500 (2): the attempt fails as unavailable.
  // Attempt 2: broken again (3), repaired (4). The result reports all four.
  await script([{ malformed: 'broken' }, { status: 500 }, { malformed: 'broken' }]);
  const out = await judgeOnce();
  expect(out.ok).toBe(true);
  expect(sim.requests()).toHaveLength(4);
  expect(out.calls).toBe(4);
  expect(out.usage['judge/judge']!.promptTokens).toBeGreaterThan(0);
});

test('a final failure carries the calls of every attempt in its details', async () => {
  await script([{ status: 503 }, { malformed: 'broken' }, { status: 400, message: 'bad shape' }]);
  const out = await judgeOnce();
  expect(out).toMatchObject({ ok: false, type: LlmFailure.Rejected });
  expect(out.message).toContain('bad shape');
  expect(sim.requests()).toHaveLength(3);
  expect(out.calls).toBe(3);
});

test('invalid output until the attempts run out: the final failure counts all six calls', async () => {
  await script(Array.from({ length: 10 }, () => ({ malformed: 'broken' as const })));
  const out = await judgeOnce();
  expect(out).toMatchObject({ ok: false, type: LlmFailure.InvalidOutput });
  expect(sim.requests()).toHaveLength(6);
  expect(out.calls).toBe(6);
});

/** Judges one instruction in both orders through pairUsageWorkflow: what a real pair of calls counts. */
function judgePair(label: string, answerA: string) {
  const judge = simRole(sim.url, { model: 'sim-judge', structuredOutput: 'json_schema' });
  return t.client.workflow.execute('pairUsageWorkflow', {
    taskQueue: t.taskQueue,
    workflowId: uniqueQueue('pair'),
    args: [
      {
        judge,
        method: methodSchema.parse({}),
        instruction: 'Plan three days in Lisbon.',
        answerA,
        answerB: 'It depends.',
        label,
      },
    ],
  });
}

test('a pair whose one call fails for good: both calls are counted (the judge in both orders)', async () => {
  await script([{ status: 400, message: 'one of the pair refused' }]);
  const out = await judgePair(
    'accounting pair',
    'Day 1: Alfama. Day 2: Belém. Day 3: Sintra. Plan three days in Lisbon this way.',
  );
  expect(out).toMatchObject({ ok: false, type: LlmFailure.Rejected });
  expect(
    sim
      .requests()
      .map((r) => r.status)
      .sort(),
  ).toEqual([200, 400]);
  expect(out.calls).toBe(2);
});

test('a pair whose two calls both fail for good: both are counted, not only the one passed on', async () => {
  await script([
    { status: 400, message: 'first of the pair refused' },
    { status: 400, message: 'second of the pair refused' },
  ]);
  const out = await judgePair('accounting pair, both refused', 'Day 1: Alfama. Day 2: Belém. Day 3: Sintra.');
  expect(out).toMatchObject({ ok: false, type: LlmFailure.Rejected });
  expect(sim.requests().map((r) => r.status)).toEqual([400, 400]);
  expect(out.calls).toBe(2);
});

test("a whole run under random faults: report.json's call count equals the requests the simulator served", async () => {
  const faulty = await startSimulator({ port: 0, seed: 3, errorRate: 0.08, malformedRate: 0.15 });
  const w = await startTestWorker('accounting-run', { cache: false });
  try {
    const outDir = tmpDir('codeclm-accounting-');
    const seedsFile = path.join(outDir, 'seeds.jsonl');
    const seeds = [
      'Write a Python function that removes duplicates from a list.',
      'Plan a three-day trip to Lisbon on a student budget.',
      'Explain how vaccines train the immune system.',
      'Draft a polite email asking a landlord to fix the heating.',
    ];
    fs.writeFileSync(seedsFile, seeds.map((instruction) => JSON.stringify({ instruction })).join('\n'));
    const config = simConfig(faulty.url, {
      limits: { size: 4, concurrency: 8, llmMaxRetryIntervalSeconds: 1 },
      method: { poolSize: 4, maxIterations: 2 },
    });
    const runId = `accounting-${Date.now()}`;
    await w.client.workflow.execute(codeclmRun, {
      workflowId: runId,
      taskQueue: w.taskQueue,
      args: [{ runId, seedsFile, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
    });
    const report = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
    const stats = faulty.stats();
    // The run met faults of both kinds, so failed attempts and repairs had to be counted.
    expect(Object.keys(stats.faults).some((f) => f.startsWith('random:'))).toBe(true);
    expect(Object.keys(stats.faults).some((f) => f.startsWith('malformed:'))).toBe(true);
    expect(report.usage.total.calls).toBe(stats.requests);
  } finally {
    await w.stop();
    await faulty.close();
  }
});
