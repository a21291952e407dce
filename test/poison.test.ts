import fs from 'node:fs';
import path from 'node:path';
import { codeclmRun } from '../src/workflows/pipeline';
import { startSimulator, type Simulator } from '../src/sim/server';
import type { Report } from '../src/report/build';
import { simConfig } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { readDataset, startControlWorker, type ControlWorker } from './helpers/control';

/**
 * A poison item: the target model never gives a complete answer for one instruction (scripted
 * through the simulator's POST /_sim/script with a task and model filter). After its bounded
 * attempts (2 activity attempts x 3 calls) it is recorded as failed with its reason, and the run
 * completes without it.
 */
let sim: Simulator;
let w: ControlWorker;

beforeAll(async () => {
  sim = await startSimulator({ seed: 11 });
  w = await startControlWorker('poison', 8);
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

test('an item whose output never validates fails with its reason; the run completes', async () => {
  // One instruction at a time, so the 6 scripted replies all meet the same instruction's
  // target answer (1 call + 2 repairs, in each of 2 activity attempts).
  const script = Array.from({ length: 6 }, () => ({ task: 'answer', model: 'sim-target', truncate: true }));
  const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify(script),
  });
  expect(res.status).toBe(200);

  const runId = `poison-${Date.now()}`;
  const outDir = tmpDir('codeclm-poison-');
  const config = simConfig(sim.url, {
    limits: { size: 6, concurrency: 1, topUpRounds: 0 },
    method: { poolSize: 3 },
  });
  const result = await w.client.workflow.execute(codeclmRun, {
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
      },
    ],
  });
  const c = result.counters;
  expect(c.failed).toBe(1);
  expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
  expect(readDataset(outDir)).toHaveLength(c.kept);

  // Every scripted reply was used, by that one item: 6 truncated target answers.
  const truncated = sim.requests().filter((r) => r.fault === 'scripted:truncate');
  expect(truncated).toHaveLength(6);

  const report = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
  const failure = report.failures.find((f) => f.stage === 'answer');
  expect(failure?.reason).toMatch(/invalid LLM output .*cut off/);
  // And one file per failed item under .work/failures.
  const files = fs
    .readdirSync(path.join(outDir, '.work', 'failures'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'));
  expect(files).toHaveLength(1);
  expect(files[0]).toContain(failure!.item);
});
