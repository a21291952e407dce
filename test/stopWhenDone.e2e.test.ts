import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { codeclmRun, progressQuery } from '../src/workflows/pipeline';
import { startSimulator, type Simulator } from '../src/sim/server';
import type { Report } from '../src/report/build';
import { simConfig, simRunInput } from './helpers/config';
import { tmpDir } from './helpers/env';
import { readDataset, startControlWorker, until, type ControlWorker } from './helpers/control';

/**
 * Issue 12 item 6, on a real server, a real worker and the simulator: once a run has kept `size`
 * pairs it starts no new instruction (in-flight ones finish) and says what it left; a cancelled run's
 * report accounts for the instructions it left in flight.
 */
let sim: Simulator;
let w: ControlWorker;

beforeAll(async () => {
  sim = await startSimulator({ seed: 11, latencyMs: 20 });
  w = await startControlWorker('stop-when-done', 16);
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

function readReport(outDir: string): Report {
  return JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
}

/** The instruction index inside its entry and round: r2-e00000-i0003 -> 3. */
const indexOf = (id: string) => Number(/-i(\d+)$/.exec(id)![1]);
const roundOf = (id: string) => Number(/^r(\d+)-/.exec(id)![1]);

test('a run that reaches its size in a top-up round starts no instruction after that', async () => {
  const runId = `stop-when-done-${Date.now()}`;
  const outDir = tmpDir('codeclm-stop-');
  // One pool entry and one instruction at a time, one iteration each: instructions run strictly in
  // index order, and about half are kept (the simulator's weak model misses half the basics), so the
  // first round falls short and the top-up round (sized for the keep rate) decodes more than it needs.
  const size = 6;
  const config = simConfig(sim.url, {
    limits: { size, concurrency: 1, topUpRounds: 3 },
    method: { poolSize: 1, maxIterations: 1, decodeBatch: 50 },
  });
  const input = simRunInput({ runId, outDir, config, taskQueue: w.taskQueue });
  const result = await w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [input],
  });
  const c = result.counters;
  const report = readReport(outDir);
  const dataset = readDataset(outDir);

  expect(c.rounds).toBeGreaterThanOrEqual(2);
  expect(c.kept).toBe(size);
  expect(dataset).toHaveLength(size);
  // Every instruction started ended kept, dropped or failed; the decoded rest never started.
  expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
  expect(c.notStarted).toBeGreaterThan(0);
  expect(report.counts.notStarted).toBe(c.notStarted);
  expect(report.counts.leftInFlight ?? 0).toBe(0);
  expect(fs.readFileSync(path.join(outDir, 'report.md'), 'utf8')).toContain(
    `Decoded but not started: ${c.notStarted} instruction`,
  );

  // Nothing started after the pair that reached the size: in the last round the entry ran its
  // instructions in index order, one at a time, and the last one it started is the last one kept.
  const lastRound = Math.max(...dataset.map((r) => roundOf(r.id)));
  const keptInLast = dataset.filter((r) => roundOf(r.id) === lastRound).map((r) => indexOf(r.id));
  const started = await startedInstructions(`${runId}/r${lastRound}-e00000`);
  expect(Math.max(...started)).toBe(Math.max(...keptInLast));
  expect(started).toEqual(Array.from({ length: started.length }, (_, i) => i));
});

/** Indexes of the instructions an entry started: the strong answer activities in its history. */
async function startedInstructions(entryWorkflowId: string): Promise<number[]> {
  const history = await w.client.workflow.getHandle(entryWorkflowId).fetchHistory();
  const out = new Set<number>();
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'answer') continue;
    const data = a.input?.payloads?.[0]?.data;
    const arg = JSON.parse(Buffer.from(data!).toString('utf8')) as { label: string };
    const m = /^strong answer r\d+-e\d+-i(\d+) /.exec(arg.label);
    if (m) out.add(Number(m[1]));
  }
  expect(out.size).toBeGreaterThan(0);
  return [...out].sort((a, b) => a - b);
}

test('a cancelled run reports the instructions it left in flight', async () => {
  const runId = `stop-cancel-${Date.now()}`;
  const outDir = tmpDir('codeclm-stop-cancel-');
  // Calls of ~300 ms keep each instruction in flight for a second or more: at 20 ms an entry could
  // be between instructions (decoding the next batch) at the moment the cancel arrived, leaving
  // nothing in flight to report (seen once in CI).
  const slow = await startSimulator({ seed: 11, latencyMs: 300 });
  try {
    await cancelInFlight(slow, runId, outDir);
  } finally {
    await slow.close();
  }
});

async function cancelInFlight(sim: Simulator, runId: string, outDir: string): Promise<void> {
  const config = simConfig(sim.url, {
    limits: { size: 200, concurrency: 8 },
    method: { poolSize: 4, decodeBatch: 10 },
  });
  const handle = await w.client.workflow.start(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [simRunInput({ runId, outDir, config, taskQueue: w.taskQueue })],
  });
  await until(
    'instructions in flight',
    async () => {
      const p = await handle.query(progressQuery);
      return p.counters.kept + p.counters.dropped >= 2 ? true : undefined;
    },
    90_000,
  );
  await handle.cancel();
  await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
  const report = readReport(outDir);
  const c = report.counts;
  expect(report.state).toBe('cancelled');
  expect(c.leftInFlight).toBeGreaterThan(0);
  expect(c.kept + c.dropped + c.failed + c.leftInFlight!).toBe(c.instructions);
  expect(fs.readFileSync(path.join(outDir, 'report.md'), 'utf8')).toContain(
    `Left in flight: ${c.leftInFlight} instruction${c.leftInFlight === 1 ? '' : 's'}, cancelled`,
  );
}
