import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { codeclmRun, pauseSignal, progressQuery, resumeSignal } from '../../src/workflows/pipeline';
import { startSimulator, type Simulator } from '../../src/sim/server';
import { listJsonFiles } from '../../src/store/files';
import type { RunInput } from '../../src/schemas/run';
import { simConfig } from './pipeline';
import { tmpDir } from './env';
import { readDataset, sleep, startControlWorker, until, type ControlWorker } from './control';

/**
 * pause / resume / cancel and the budget, on a real server, a real worker and the simulator: a
 * paused run starts no new LLM request (the simulator's request log says so), a cancelled run ends
 * cancelled with its kept pairs written, a run over its budget pauses with the reason and goes on
 * after `codeclm resume --budget-calls`.
 *
 * The same scenarios run on the suite's dev server (test/control.test.ts) and on the PostgreSQL
 * cluster (test/cluster.test.ts): `address` is read when the scenarios start, after the file's own
 * beforeAll has started its server.
 */
const run = promisify(execFile);
const bin = path.join(__dirname, '..', '..', 'bin', 'codeclm.js');
const examples = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');

export function describeControlScenarios(name: string, address: () => string): void {
  describe(name, () => {
    let sim: Simulator;
    let w: ControlWorker;

    beforeAll(async () => {
      sim = await startSimulator({ seed: 3, latencyMs: 40 });
      w = await startControlWorker('control', 16, address());
    });
    afterAll(async () => {
      await w?.stop();
      await sim?.close();
    });

    function input(
      runId: string,
      outDir: string,
      limits: Partial<RunInput['config']['limits']> = {},
    ): RunInput {
      const config = simConfig(sim.url, {
        limits: { size: 40, concurrency: 8, ...limits },
        method: { poolSize: 10, decodeBatch: 5 },
      });
      return { runId, seedsFile: examples, outDir, skipInvalid: false, config, taskQueue: w.taskQueue };
    }

    /** Waits until the simulator has seen no new request for `quietMs`. */
    async function quiet(quietMs = 1500): Promise<number> {
      return until(
        'in-flight requests to finish',
        async () => {
          const before = sim.stats().requests;
          await sleep(quietMs);
          return sim.stats().requests === before ? before : undefined;
        },
        30_000,
        0,
      );
    }

    function cli(...args: string[]) {
      return run(process.execPath, [bin, ...args], {
        env: { ...process.env, TEMPORAL_ADDRESS: address() },
        timeout: 60_000,
      });
    }

    test('pause: no new LLM request starts while paused; resume: the run completes', async () => {
      const runId = `control-pause-${Date.now()}`;
      const outDir = tmpDir('codeclm-pause-');
      const handle = await w.client.workflow.start(codeclmRun, {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [input(runId, outDir)],
      });
      // Well into generation (32 encode calls first).
      await until('generation to start', () => (sim.stats().requests > 60 ? true : undefined), 60_000);
      await handle.signal(pauseSignal, 'paused by the test');
      const paused = await until('paused state', async () => {
        const p = await handle.query(progressQuery);
        return p.state === 'paused' ? p : undefined;
      });
      expect(paused.pausedReason).toBe('paused by the test');
      const settled = await quiet();
      await sleep(4000);
      expect(sim.stats().requests).toBe(settled);
      expect((await handle.query(progressQuery)).state).toBe('paused');

      await handle.signal(resumeSignal);
      const result = await handle.result();
      const c = result.counters;
      expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
      expect(readDataset(outDir)).toHaveLength(c.kept);
      expect(sim.stats().requests).toBeGreaterThan(settled);
    });

    test('cancel: the run ends cancelled and the pairs kept so far are written', async () => {
      const runId = `control-cancel-${Date.now()}`;
      const outDir = tmpDir('codeclm-cancel-');
      const handle = await w.client.workflow.start(codeclmRun, {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [input(runId, outDir, { size: 200 })],
      });
      await until(
        'a few kept pairs',
        async () => ((await handle.query(progressQuery)).counters.kept >= 3 ? true : undefined),
        90_000,
      );
      const { stdout } = await cli('cancel', runId);
      expect(stdout).toContain('cancellation requested');
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      const dataset = readDataset(outDir);
      expect(dataset.length).toBeGreaterThanOrEqual(3);
      expect(dataset.length).toBe(listJsonFiles(path.join(outDir, '.work', 'records')).length);
      expect(new Set(dataset.map((r) => r.id)).size).toBe(dataset.length);
      expect(fs.existsSync(path.join(outDir, 'report.json'))).toBe(true);
    });

    test('budget: the run pauses with the reason when reached, and resumes with a raised budget', async () => {
      const runId = `control-budget-${Date.now()}`;
      const outDir = tmpDir('codeclm-budget-');
      const handle = await w.client.workflow.start(codeclmRun, {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [input(runId, outDir, { size: 30, budgetCalls: 120 })],
      });
      const paused = await until(
        'budget pause',
        async () => {
          const p = await handle.query(progressQuery);
          return p.state === 'paused' ? p : undefined;
        },
        90_000,
      );
      expect(paused.pausedReason).toMatch(/call budget reached: \d+ of 120 calls used/);
      const settled = await quiet();
      await sleep(2000);
      expect(sim.stats().requests).toBe(settled);

      // status says why; resume without raising it pauses again at once.
      const status = JSON.parse((await cli('status', runId, '--json')).stdout) as {
        state: string;
        paused_reason: string;
      };
      expect(status.state).toBe('paused');
      expect(status.paused_reason).toMatch(/call budget reached/);
      await handle.signal(resumeSignal);
      await sleep(500);
      expect((await handle.query(progressQuery)).state).toBe('paused');

      const { stdout } = await cli('resume', runId, '--budget-calls', '100000');
      expect(stdout).toContain('resumed');
      const result = await handle.result();
      const c = result.counters;
      expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
      expect(readDataset(outDir)).toHaveLength(c.kept);
    });
  });
}
