import path from 'node:path';
import fs from 'node:fs';
import { codeclmEval, type EvalResult } from '../src/workflows/eval';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/server';
import type { EvalRecord } from '../src/activities/eval';
import type { EvalReport } from '../src/report/evalReport';
import type { ResolvedConfig, RoleName } from '../src/schemas/config';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { readJsonl } from './helpers/files';
import { fastBatchSettings } from './helpers/config';

/**
 * `codeclm eval` in batch mode (issue 14) on the suite's dev server, a real worker and the
 * simulator's Files + Batch API: the same records and CRR as online mode for the same instructions
 * (the simulator answers a request the same way online and in a batch). With `structuredOutput:
 * "auto"` on an endpoint that refuses json_schema, one online probe decides the judge's dialect
 * before its first batch: no batch line is refused, and the figures are online mode's.
 */
/** A third of the example set (every third line, each category): seconds, not minutes. */
const instructionsFile = path.join(tmpDir('codeclm-eval-batch-set-'), 'instructions.jsonl');
fs.writeFileSync(
  instructionsFile,
  fs
    .readFileSync(path.join(__dirname, '..', 'examples', 'eval', 'instructions.jsonl'), 'utf8')
    .split('\n')
    .filter((l, i) => l.trim() && i % 3 === 0)
    .join('\n') + '\n',
);
const N = 8;
const FAST = { completionDelayMs: 200, validatingMs: 50, finalizingMs: 50, cancellingMs: 50 };
let w: TestWorker;
const sims: Simulator[] = [];

async function sim(opts: Omit<SimulatorOptions, 'batch'> = {}): Promise<Simulator> {
  const s = await startSimulator({ port: 0, seed: 11, ...opts, batch: FAST });
  sims.push(s);
  return s;
}

beforeAll(async () => {
  process.env.CODECLM_BATCH_TICK_MS = '200';
  w = await startTestWorker('eval-batch', { cache: false });
});
afterAll(async () => {
  await w?.stop();
  await Promise.all(sims.map((s) => s.close()));
});

/** Every item in flight at once. */
function onlineConfig(url: string): ResolvedConfig {
  return simConfig(url, { limits: { concurrency: N, llmActivityTimeoutMinutes: 30 } });
}

/** A batch gathers for a second: a step's requests of all items (started a little apart) in one. */
const settings = { ...fastBatchSettings, maxWaitSeconds: 1 };

function inBatches(url: string, roles: RoleName[]): ResolvedConfig {
  const c = onlineConfig(url);
  for (const role of roles) c.roles[role] = { ...c.roles[role], mode: 'batch', batch: settings };
  return c;
}

interface Outcome {
  result: EvalResult;
  records: Omit<EvalRecord, 'eval_id'>[];
  report: EvalReport;
}

async function evaluate(name: string, config: ResolvedConfig): Promise<Outcome> {
  const evalId = `eval-batch-${name}-${Date.now()}`;
  const outDir = tmpDir(`codeclm-eval-batch-${name}-`);
  const result = await w.client.workflow.execute(codeclmEval, {
    workflowId: evalId,
    taskQueue: w.taskQueue,
    args: [{ evalId, instructionsFile, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
  });
  const records = readJsonl<EvalRecord>(path.join(outDir, 'eval.jsonl')).map(
    ({ eval_id: _e, ...rest }) => rest,
  );
  const report = JSON.parse(fs.readFileSync(path.join(outDir, 'eval-report.json'), 'utf8')) as EvalReport;
  // Whatever went through batches, the evaluation's spool is gone once it has ended.
  expect(fs.existsSync(path.join(outDir, '.work', 'batches'))).toBe(false);
  return { result, records, report };
}

test('answers and judging in batch mode: the same answers, scores, verdicts and CRR as online', async () => {
  const s1 = await sim();
  const online = await evaluate('online', onlineConfig(s1.url));
  expect(online.result.judged).toBe(N);
  expect(s1.stats().batch.batchesCreated).toBe(0);

  const s2 = await sim();
  const batch = await evaluate('batch', inBatches(s2.url, ['target', 'strong', 'judge']));
  expect(batch.result.failed).toBe(0);
  expect(batch.records).toEqual(online.records);
  expect(batch.report.crr).toEqual(online.report.crr);
  expect(batch.result.crr).toEqual(online.result.crr);

  // Every answer and judgement was a batch line (the judge's one dialect probe went online).
  const cells = batch.report.usage.per_stage_role;
  expect(cells['answer/target']!.batchCalls).toBe(N);
  expect(cells['answer/strong']!.batchCalls).toBe(N);
  expect(cells['judge/judge']!.batchCalls).toBe(2 * N);
  const stats = s2.stats();
  expect(stats.batch.requests).toBe(4 * N);
  expect(stats.batch.failedRequests).toBe(0);
  // At least one batch per role: answers of both roles, then the judgements (both orders).
  expect(stats.batch.batchesCreated).toBeGreaterThanOrEqual(3);
  // Only the probe went online: one request, cut to one token.
  expect(stats.requests).toBe(1);
}, 180_000);

test('structuredOutput auto on an endpoint refusing json_schema: one online probe, no refused batch line', async () => {
  const s3 = await sim({ dialect: 'llama-cpp-python' });
  const online = await evaluate('dialect-online', onlineConfig(s3.url));
  expect(online.result.judged).toBe(N);

  const s4 = await sim({ dialect: 'llama-cpp-python' });
  const batch = await evaluate('dialect-batch', inBatches(s4.url, ['judge']));
  expect(batch.result.failed).toBe(0);
  expect(batch.records).toEqual(online.records);
  expect(batch.report.crr).toEqual(online.report.crr);

  const stats = s4.stats();
  // The probe: json_schema refused once online, json_object with a schema taken; then every batch
  // line went in that dialect, and none was refused.
  expect(stats.faults['dialect:llama-cpp-python']).toBe(1);
  expect(stats.batch.failedRequests).toBe(0);
  expect(stats.batch.requests).toBe(2 * N);
  const judge = batch.report.usage.per_stage_role['judge/judge']!;
  expect(judge.batchCalls).toBe(2 * N);
  expect(judge.calls).toBe(2 * N + 2);
  expect(judge.dialect).toBe('json_object_schema');
}, 180_000);
