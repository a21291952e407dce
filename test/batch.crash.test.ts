import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { Client, Connection } from '@temporalio/client';
import { codeclmRun } from '../src/workflows/pipeline';
import { startSimulator, type Simulator } from '../src/sim/server';
import type { DatasetRecord } from '../src/schemas/records';
import type { Report } from '../src/report/build';
import type { ResolvedConfig } from '../src/schemas/config';
import { batcherWorkflowId } from '../src/batch/protocol';
import { KEY_METADATA } from '../src/batch/provider';
import { freePort, startDevServer, type DevServer } from '../src/temporal/devServer';
import { simConfig } from './helpers/pipeline';
import { tmpDir, uniqueQueue } from './helpers/env';
import { fastBatchSettings } from './helpers/config';

/**
 * Batch mode survives crashes (issue 14 item 2): while a batch is open at the provider, the
 * `codeclm worker` process is SIGKILLed, the Temporal server (a dev server of this test's own, its
 * state in a SQLite file) is SIGKILLed and restarted on the same file and port, and the provider
 * (the simulator, its state on disk) is restarted. The run completes, each batch was created exactly
 * once at the provider (one batch per key, and the simulator's own count equals the batches the
 * batchers made), and nothing is lost or duplicated (every instruction accounted for, none failed,
 * each kept pair once in dataset.jsonl).
 */
const ROOT = path.join(__dirname, '..');
const dir = tmpDir('codeclm-batch-crash-');
/** A third of the example seeds: less online encoding before the batches this test is about. */
const examples = path.join(dir, 'seeds.jsonl');
fs.writeFileSync(
  examples,
  fs
    .readFileSync(path.join(ROOT, 'examples', 'seeds.jsonl'), 'utf8')
    .split('\n')
    .filter((l, i) => l.trim() && i % 3 === 0)
    .join('\n') + '\n',
);
const taskQueue = uniqueQueue('batch-crash');
/** Slow enough batches to catch one in progress; the restarted provider answers faster (a shorter run). */
const SIM = { completionDelayMs: 2500, validatingMs: 50, finalizingMs: 50, cancellingMs: 50 };
const SIM_AFTER = { ...SIM, completionDelayMs: 300 };
let client: Client;
let worker: ChildProcess | undefined;
let sim: Simulator | undefined;
let server: DevServer | undefined;
let serverOpts: Parameters<typeof startDevServer>[0];

function startWorker(n: number): Promise<ChildProcess> {
  const log = path.join(dir, `worker-${n}.log`);
  const out = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'codeclm.js'), 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: server!.address,
      CODECLM_TASK_QUEUE: taskQueue,
      CODECLM_CACHE: 'off',
      CODECLM_BATCH_TICK_MS: '200',
      CODECLM_HOME: path.join(dir, 'home'),
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  return until(
    `worker ${n} ready`,
    () => fs.readFileSync(log, 'utf8').includes('to stop gracefully'),
    60_000,
  ).then(() => child);
}

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  serverOpts = {
    dbFile: path.join(dir, 'temporal.db'),
    port: await freePort(),
    headless: true,
    log: () => undefined,
    logFile: path.join(dir, 'server.log'),
  };
  server = await startDevServer(serverOpts);
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
});
afterAll(async () => {
  worker?.kill('SIGKILL');
  await sim?.close();
  await client?.connection.close();
  await server?.stop();
});

/** The run's result, asked again while the restarted server is not answering yet. */
async function resultOf(handle: { result(): Promise<unknown> }, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await handle.result();
      return;
    } catch (err) {
      const msg = (err as Error).message;
      if (Date.now() > deadline || !/UNAVAILABLE|ECONNREFUSED|connect|Connection/i.test(msg)) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

test('worker SIGKILLed, Temporal server SIGKILLed + restarted and provider restarted with a batch open: each batch created once, nothing lost', async () => {
  const stateDir = path.join(dir, 'sim-state');
  sim = await startSimulator({ port: 0, seed: 7, stateDir, batch: SIM });
  const port = Number(new URL(sim.url).port);
  const base = simConfig(sim.url, {
    limits: { size: 8, concurrency: 16, topUpRounds: 0 },
    // Two iterations at most: fewer loop steps, each waiting for a batch, after the restart.
    method: { poolSize: 8, maxIterations: 2 },
  });
  const settings = fastBatchSettings;
  const config: ResolvedConfig = {
    ...base,
    roles: {
      strong: { ...base.roles.strong, stageModes: { answer: 'batch' }, batch: settings },
      target: { ...base.roles.target, mode: 'batch', batch: settings },
      judge: { ...base.roles.judge, mode: 'batch', batch: settings },
    },
    limits: { ...base.limits, llmActivityTimeoutMinutes: 30 },
  };
  worker = await startWorker(1);
  const runId = `batch-crash-${Date.now()}`;
  const outDir = path.join(dir, 'out');
  const handle = await client.workflow.start(codeclmRun, {
    workflowId: runId,
    taskQueue,
    args: [{ runId, seedsFile: examples, outDir, skipInvalid: false, config, taskQueue }],
  });

  await until('a batch in progress', () => (sim!.stats().batch.byStatus.in_progress ?? 0) > 0, 120_000);
  const openAtKill = sim.stats().batch.byStatus.in_progress ?? 0;
  const killed = new Promise((r) => worker!.once('exit', r));
  worker.kill('SIGKILL');
  await killed;
  server!.process.kill('SIGKILL');
  await server!.exited;
  await sim.close();
  // Same state file and port: the run, its batchers and their timers are all in the file.
  server = await startDevServer(serverOpts);
  sim = await startSimulator({ port, seed: 7, stateDir, batch: SIM_AFTER });
  expect(openAtKill).toBeGreaterThan(0);
  worker = await startWorker(2);

  await resultOf(handle);
  const records = fs
    .readFileSync(path.join(outDir, 'dataset.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DatasetRecord);
  const report = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
  const c = report.counts;
  expect(records.length).toBe(c.kept);
  expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
  expect(new Set(records.map((r) => `${r.instruction}\u0000${r.response}`)).size).toBe(records.length);
  expect(c.failed).toBe(0);
  expect(c.kept + c.dropped + c.failed).toBe(c.instructions);

  // Exactly once at the provider: one batch per key, and as many as the batchers created.
  const batches: OpenAI.Batches.Batch[] = [];
  const sdk = new OpenAI({ baseURL: sim.url, apiKey: 'sk-sim', maxRetries: 0 });
  for await (const b of sdk.batches.list({ limit: 100 })) batches.push(b);
  const keys = batches.map((b) => b.metadata?.[KEY_METADATA]);
  expect(new Set(keys).size).toBe(keys.length);
  expect(sim.stats().batch.batchesCreated).toBe(batches.length);
  let created = 0;
  for (const role of ['target', 'judge', 'strong'] as const) {
    const r = await client.workflow
      .getHandle(batcherWorkflowId(runId, role))
      .result()
      .catch(() => ({ created: 0 }));
    created += (r as { created: number }).created;
  }
  expect(created).toBe(batches.length);
  // The lines the provider answered are the ones the run counted (none applied twice).
  const batchCalls = Object.values(report.usage.per_stage_role).reduce((n, u) => n + (u.batchCalls ?? 0), 0);
  expect(sim.stats().batch.requests).toBe(batchCalls);
}, 300_000);
