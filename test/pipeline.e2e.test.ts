import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { codeclmRun } from '../src/workflows/pipeline';
import { workflowsPath } from '../src/worker';
import { startSimulator } from '../src/sim/server';
import type { DatasetRecord } from '../src/schemas/records';
import type { Report } from '../src/report/build';
import type { RunResult } from '../src/schemas/run';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { readDataset } from './helpers/files';

/**
 * The whole CodecLM pipeline on a real Temporal dev server, a real worker and the simulator over
 * HTTP: seeds in, dataset.jsonl out.
 */
const examples = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 7 });
  w = await startTestWorker('e2e');
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

async function runOnce(runId: string, outDir: string): Promise<RunResult> {
  const config = simConfig(sim.url, { limits: { size: 40, concurrency: 16 }, method: { poolSize: 50 } });
  return w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [{ runId, seedsFile: examples, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
  });
}

const runIds = [`e2e-a-${Date.now()}`, `e2e-b-${Date.now()}`];
const outDirs = [tmpDir('codeclm-e2e-a-'), tmpDir('codeclm-e2e-b-')];
let first: RunResult;

test('seeds in, dataset.jsonl out: every record obeys the filter and comes from the pool', async () => {
  first = await runOnce(runIds[0]!, outDirs[0]!);
  const records = readDataset(outDirs[0]!);
  expect(records.length).toBeGreaterThan(0);
  expect(records.length).toBe(first.counters.kept);
  const pool = JSON.parse(fs.readFileSync(path.join(outDirs[0]!, '.work', 'pool.json'), 'utf8')) as {
    entries: { metadata: DatasetRecord['metadata'] }[];
  };
  const poolKeys = new Set(pool.entries.map((e) => JSON.stringify(e.metadata)));
  const theta = 3;
  for (const r of records) {
    expect(r.iteration).toBeGreaterThanOrEqual(1);
    expect(r.iteration).toBeLessThanOrEqual(4);
    expect(r.scores.gap).toBeCloseTo(r.scores.strong - r.scores.target, 6);
    if (r.source === 'strong') expect(r.scores.gap).toBeGreaterThan(theta);
    else expect(r.scores.gap).toBeLessThan(-theta);
    expect(poolKeys.has(JSON.stringify(r.metadata))).toBe(true);
    expect(r.run_id).toBe(runIds[0]);
    expect(r.actions).toHaveLength(r.iteration - 1);
  }
  expect(new Set(records.map((r) => r.id)).size).toBe(records.length);

  const report = JSON.parse(fs.readFileSync(path.join(outDirs[0]!, 'report.json'), 'utf8')) as Report;
  const c = report.counts;
  expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
  expect(c.kept).toBe(records.length);
  expect(Object.values(c.keptByIteration).reduce((a, b) => a + b, 0)).toBe(c.kept);
  expect(c.seeds).toBeGreaterThanOrEqual(25);
  expect(c.encoded).toBe(c.seeds);
  expect(report.usage.total.calls).toBeGreaterThan(c.seeds);
  expect(fs.readFileSync(path.join(outDirs[0]!, 'report.md'), 'utf8')).toContain('Kept per iteration');
  // The simulator's filter gives the loop real work: some pairs need more than one iteration.
  expect(Object.keys(c.keptByIteration).length + (c.dropped > 0 ? 1 : 0)).toBeGreaterThan(1);
});

test('the same run seed and simulator seed give the identical dataset twice', async () => {
  await runOnce(runIds[1]!, outDirs[1]!);
  const strip = (rs: DatasetRecord[]) => rs.map(({ run_id: _r, ...rest }) => rest);
  expect(strip(readDataset(outDirs[1]!))).toEqual(strip(readDataset(outDirs[0]!)));
});

test('recorded histories replay without nondeterminism errors', async () => {
  const ids: string[] = [runIds[0]!];
  // Children of every kind: encode chunks and entry workflows (which run their instructions'
  // steps themselves; refineInstruction histories from before that are in test/histories.test.ts).
  for (const type of ['encodeSeeds', 'generateForEntry']) {
    let n = 0;
    const query = `WorkflowId STARTS_WITH "${runIds[0]}/" AND WorkflowType = "${type}"`;
    for await (const wf of w.client.workflow.list({ query }) as AsyncIterable<WorkflowExecutionDescription>) {
      ids.push(wf.workflowId);
      if (++n >= 10) break;
    }
    expect(n).toBeGreaterThan(0);
  }
  const histories = await Promise.all(
    ids.map(async (workflowId) => ({
      workflowId,
      history: await w.client.workflow.getHandle(workflowId).fetchHistory(),
    })),
  );
  const results = Worker.runReplayHistories({ workflowsPath: workflowsPath(), replayName: 'e2e' }, histories);
  let replayed = 0;
  for await (const r of results) {
    expect(r.error).toBeUndefined();
    replayed++;
  }
  expect(replayed).toBe(ids.length);
});
