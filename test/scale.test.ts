import type { WorkflowExecutionInfo } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { codeclmRun, progressQuery } from '../src/workflows/pipeline';
import { workflowsPath } from '../src/worker';
import { startSimulator, type Simulator } from '../src/sim/server';
import { simConfig } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { readDataset, startControlWorker, type ControlWorker } from './helpers/control';
import path from 'node:path';

/**
 * The shapes that make any size possible, at a small size: entries decode in batches of
 * method.decodeBatch, and with a tiny history bound both the entry workflows and the run
 * continue-as-new (carrying counters only) and still add up to one consistent dataset.
 */
let sim: Simulator;
let w: ControlWorker;

beforeAll(async () => {
  sim = await startSimulator({ seed: 5 });
  w = await startControlWorker('scale', 16);
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

async function executions(query: string): Promise<WorkflowExecutionInfo[]> {
  const out: WorkflowExecutionInfo[] = [];
  for await (const wf of w.client.workflow.list({ query })) out.push(wf);
  return out;
}

test('batched decode and continue-as-new at every level keep the counts and the dataset whole', async () => {
  const runId = `scale-${Date.now()}`;
  const outDir = tmpDir('codeclm-scale-');
  const config = simConfig(sim.url, {
    limits: { size: 48, concurrency: 4, topUpRounds: 1 },
    method: { poolSize: 4, decodeBatch: 3, dedupeInstructions: true },
  });
  const handle = await w.client.workflow.start(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [
      {
        runId,
        seedsFile: path.join(__dirname, '..', 'examples', 'seeds.jsonl'),
        outDir,
        skipInvalid: false,
        config,
        taskQueue: w.taskQueue,
        tuning: { maxHistoryEvents: 60 },
      },
    ],
  });
  // The progress query answers across continue-as-new (same workflow id).
  let queried = 0;
  const polling = (async () => {
    for (;;) {
      const d = await handle.describe();
      if (d.status.name !== 'RUNNING') return;
      await handle.query(progressQuery).then(
        () => queried++,
        () => undefined,
      );
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  const result = await handle.result();
  await polling;
  expect(queried).toBeGreaterThan(0);

  const c = result.counters;
  // Exact duplicates removed after decode count among the instructions (src/quality).
  expect(c.kept + c.dropped + c.failed + c.duplicatesRemoved).toBe(c.instructions);
  const dataset = readDataset(outDir);
  expect(dataset).toHaveLength(c.kept);
  expect(new Set(dataset.map((r) => r.id)).size).toBe(dataset.length);
  expect(new Set(dataset.map((r) => r.instruction)).size).toBe(dataset.length);

  // Decode asked for at most decodeBatch instructions per call.
  const decodeCalls = sim.requests().filter((r) => r.task.includes('decode') && r.status === 200).length;
  expect(decodeCalls).toBeGreaterThanOrEqual(Math.ceil(c.instructions / 3));

  // Continue-as-new happened for the run and for entries.
  const runs = await executions(`WorkflowId = "${runId}"`);
  expect(runs.filter((e) => e.status.name === 'CONTINUED_AS_NEW').length).toBeGreaterThan(0);
  const entries = await executions(
    `WorkflowId STARTS_WITH "${runId}/r1-e" AND WorkflowType = "generateForEntry"`,
  );
  expect(entries.filter((e) => e.status.name === 'CONTINUED_AS_NEW').length).toBeGreaterThan(0);
  for (const e of runs) expect(e.historyLength).toBeLessThan(300);

  // Every history of the run and its entries (continued ones included) replays deterministically:
  // entries interleave many instructions' activities, signals and continue-as-new decisions.
  const histories = await Promise.all(
    [...runs, ...entries].map(async (e) => ({
      workflowId: e.workflowId,
      history: await w.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory(),
    })),
  );
  for await (const r of Worker.runReplayHistories(
    { workflowsPath: workflowsPath(), replayName: 'scale' },
    histories,
  ))
    expect(r.error).toBeUndefined();
});
