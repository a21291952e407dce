import fs from 'node:fs';
import path from 'node:path';
import { codeclmRun } from '../src/workflows/pipeline';
import { startSimulator } from '../src/sim/server';
import type { Report } from '../src/report/build';
import type { ResolvedConfig } from '../src/schemas/config';
import { makePlan, writeRunPlan } from '../src/plan/make';
import { historyFile, readHistory } from '../src/plan/history';
import type { Plan } from '../src/plan/estimate';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';

/**
 * `codeclm plan` against what a run really does: the pipeline on a real worker and the suite's
 * Temporal dev server, answered by the simulator over HTTP. As a user would: a pilot run, planned
 * with the bench's figures (a fresh CODECLM_HOME has no history), then a bigger run of the same
 * seeds with another run seed (so another pool and other instructions), pool size and decode
 * batch, planned with the figures measured on the pilot.
 *
 * Keep rates differ between seed sets (on the simulator as with real models: some domains are
 * harder for the target), and the bench's figures are one 120-instruction sample of other runs:
 * the pilot's plan is held to 25 %, the plan measured on the pilot to the 15 % the issue asks for.
 */
const home = tmpDir('codeclm-plan-home-');
const examples = path.join(__dirname, '..', 'examples');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;
let savedHome: string | undefined;

beforeAll(async () => {
  savedHome = process.env.CODECLM_HOME;
  process.env.CODECLM_HOME = home;
  sim = await startSimulator({ port: 0, seed: 11 });
  // No LLM cache: every call the plan counts is a call made.
  w = await startTestWorker('plan', { cache: false });
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
  if (savedHome === undefined) delete process.env.CODECLM_HOME;
  else process.env.CODECLM_HOME = savedHome;
});

async function plannedRun(
  name: string,
  seedsFile: string,
  config: ResolvedConfig,
): Promise<{ plan: Plan; report: Report }> {
  const runId = `plan-${name}-${Date.now()}`;
  const outDir = tmpDir(`codeclm-plan-${name}-`);
  // As `run` does: the plan is made and written before the workflow starts.
  const { plan } = makePlan({ seedsFile, config, runId });
  await writeRunPlan(outDir, plan);
  await w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [{ runId, seedsFile, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
  });
  const report = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
  const md = fs.readFileSync(path.join(outDir, 'report.md'), 'utf8');
  expect(md).toContain('## Plan vs actual');
  return { plan, report };
}

function within(planned: number, actual: number, tolerance: number): void {
  expect(actual).toBeGreaterThan(0);
  const error = Math.abs(planned - actual) / actual;
  if (error > tolerance)
    throw new Error(`planned ${planned} vs actual ${actual}: off by ${(error * 100).toFixed(1)}%`);
}

test('a pilot run planned with the bench figures: exact structural stages, total within 25 %', async () => {
  const config = simConfig(sim.url, {
    limits: { size: 120, concurrency: 24 },
    method: { poolSize: 16 },
  });
  const { plan, report } = await plannedRun('a', path.join(examples, 'seeds.jsonl'), config);
  expect(plan.figures.source).toBe('bench');
  expect(plan.figures.label).toMatch(/defaults from the bench/);
  process.stderr.write(`plan a: ${JSON.stringify(report.plan_vs_actual?.rows)}\n`);
  within(plan.total.calls, report.usage.total.calls, 0.25);
  // The report compares per stage, with the run's own numbers.
  const total = report.plan_vs_actual!.rows.find((r) => r.stage === 'total')!;
  expect(total.planned_calls).toBe(plan.total.calls);
  expect(total.actual_calls).toBe(report.usage.total.calls);
  expect(report.plan_vs_actual!.rows.map((r) => r.stage)).toEqual([
    'encode',
    'rubrics',
    'decode',
    'improve',
    'answer',
    'judge',
    'total',
  ]);
  // Structural stages are exact: one encode per seed, rubrics once per pool entry.
  expect(report.plan_vs_actual!.rows[0]!.actual_calls).toBe(plan.stages.encode.calls);
  expect(report.plan_vs_actual!.rows[1]!.actual_calls).toBe(plan.stages.rubrics.calls);
  // The finished run is now part of this machine's history.
  expect(readHistory(historyFile()).map((h) => h.run_id)).toEqual([report.run_id]);
}, 900_000);

test('plan measured on the pilot: within 15 % of the calls of a run with another size, pool, batch and run seed', async () => {
  const config = simConfig(sim.url, {
    limits: { size: 100, concurrency: 16 },
    method: { poolSize: 24, decodeBatch: 4, runSeed: 7 },
  });
  const { plan, report } = await plannedRun('b', path.join(examples, 'seeds.jsonl'), config);
  expect(plan.figures.source).toBe('history');
  expect(plan.figures.label).toMatch(/measured on 1 earlier run/);
  process.stderr.write(`plan b: ${JSON.stringify(report.plan_vs_actual?.rows)}\n`);
  within(plan.total.calls, report.usage.total.calls, 0.15);
  // Tokens follow the calls, plus each call's own length (answers to harder instructions run longer):
  // a looser sanity bound.
  within(plan.total.tokens, report.usage.total.prompt_tokens + report.usage.total.completion_tokens, 0.25);
}, 900_000);
