import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { freePort, startDevServer, type DevServer } from '../temporal/devServer';
import { startSimulator, type Simulator } from '../sim/server';
import { progressQuery, type codeclmRun } from '../workflows/pipeline';
import type { RunProgress, RunResult } from '../schemas/run';
import { runPaths } from '../store/runDir';
import { listJsonFiles } from '../store/files';
import { prng } from '../sim/prng';
import { simRoles } from './runStats';

/**
 * The chaos harness (issue 4): a real dev server (own temp db, free port), W `codeclm worker`
 * processes and the simulator with faults; a run started through the CLI against TEMPORAL_ADDRESS;
 * workers killed with SIGKILL at random intervals and restarted, the server killed once with
 * SIGKILL and restarted on the same state file. When the run is done, the dataset is checked:
 *
 *   lost        records under .work/records missing from dataset.jsonl, plus instructions whose
 *               outcome is unknown (|instructions - kept - dropped - failed|), plus a kept counter
 *               that differs from the dataset's line count
 *   duplicates  repeated ids, and repeated (instruction, response) pairs, in dataset.jsonl
 */
export interface ChaosOptions {
  /** Target kept pairs of the run (--size). */
  size: number;
  workers: number;
  seed: number;
  /** Seed instructions generated for the run; default max(32, size / 2). */
  seeds?: number;
  /** Mean time between worker kills, ms (uniform in [0.5, 1.5] x this). */
  killEveryMs?: number;
  /** Kill the server (once) after this many worker kills; default 2. */
  serverKillAfter?: number;
  errorRate?: number;
  malformedRate?: number;
  latencyMs?: number;
  concurrency?: number;
  /** Give up (exit non-zero) after this long. */
  timeoutMs?: number;
  /** Keep the temp dir (default: removed when nothing failed). */
  keep?: boolean;
  log?: (line: string) => void;
  /** Extra method/limits settings for the run's config. */
  method?: Record<string, unknown>;
  limits?: Record<string, unknown>;
}

export interface ChaosSummary {
  kept: number;
  failed: number;
  dropped: number;
  instructions: number;
  lost: number;
  duplicates: number;
  worker_kills: number;
  server_kills: number;
  worker_restarts_unplanned: number;
  graceful_stops: number;
  wall_s: number;
  state: string;
  run_id: string;
  dir: string;
  sim_faults: Record<string, number>;
}

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'codeclm.js');

/** `codeclm run --detach` against the cluster in `env` (TEMPORAL_ADDRESS); throws with its stderr. */
export async function startRunDetached(o: {
  seedsFile: string;
  outDir: string;
  configFile: string;
  runId: string;
  env: NodeJS.ProcessEnv;
}): Promise<void> {
  const args = ['run', '--seeds', o.seedsFile, '--out', o.outDir, '--config', o.configFile];
  const starter = spawn(process.execPath, [BIN, ...args, '--run-id', o.runId, '--detach'], {
    env: o.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  starter.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => starter.once('exit', r));
  if (code !== 0) throw new Error(`codeclm run --detach exited ${code}: ${stderr}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Seed instructions: the bundled examples, varied so that every line is distinct. */
export function chaosSeeds(n: number): string {
  const examples = fs
    .readFileSync(path.join(ROOT, 'examples', 'seeds.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { instruction: string });
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const base = examples[i % examples.length]!.instruction;
    const variant = i < examples.length ? '' : ` (variant ${Math.floor(i / examples.length)})`;
    lines.push(JSON.stringify({ id: `s${i}`, instruction: `${base}${variant}` }));
  }
  return `${lines.join('\n')}\n`;
}

class WorkerProcess {
  child?: ChildProcess;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  planned = false;
  constructor(
    readonly name: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly args: string[],
    private readonly logFile: string,
  ) {}

  private logOffset = 0;

  start(): void {
    this.logOffset = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const out = fs.openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [BIN, 'worker', ...this.args], {
      env: this.env,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.child = child;
    this.planned = false;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits until this start of the worker has said it is running (its signal handlers are set). */
  async ready(timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.alive) {
      const text = fs.readFileSync(this.logFile, 'utf8').slice(this.logOffset);
      if (text.includes('to stop gracefully')) return true;
      await sleep(200);
    }
    return false;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.planned = true;
    if (!this.alive) return (await this.exited) ?? { code: null, signal: null };
    this.child!.kill(signal);
    return this.exited!;
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosSummary> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`chaos: ${line}\n`));
  const started = Date.now();
  const rand = prng(opts.seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-chaos-'));
  const outDir = path.join(dir, 'out');
  const dbFile = path.join(dir, 'temporal.db');
  const runId = `chaos-${opts.seed}-${Date.now().toString(36)}`;
  const seedCount = opts.seeds ?? Math.max(32, Math.ceil(opts.size / 2));
  fs.writeFileSync(path.join(dir, 'seeds.jsonl'), chaosSeeds(seedCount));

  const sim: Simulator = await startSimulator({
    seed: opts.seed,
    errorRate: opts.errorRate ?? 0.05,
    malformedRate: opts.malformedRate ?? 0.03,
    latencyMs: opts.latencyMs ?? 20,
  });
  const config = {
    roles: simRoles(sim.url, 'CODECLM_CHAOS_KEY'),
    method: {
      poolSize: Math.min(200, Math.max(10, Math.ceil(opts.size / 10))),
      dedupeInstructions: true,
      ...opts.method,
    },
    limits: {
      size: opts.size,
      concurrency: opts.concurrency ?? 32,
      llmMaxRetryIntervalSeconds: 5,
      ...opts.limits,
    },
  };
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));

  const port = await freePort();
  const serverOpts = {
    dbFile,
    port,
    headless: true,
    log: () => undefined,
    logFile: path.join(dir, 'server.log'),
  };
  let server: DevServer | undefined = await startDevServer(serverOpts);
  const address = server.address;
  log(
    `dir ${dir}; server ${address}; simulator ${sim.url}; ${seedCount} seeds, size ${opts.size}, ${opts.workers} workers`,
  );

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    CODECLM_CHAOS_KEY: 'sim-key',
    CODECLM_CACHE: 'off',
    CODECLM_LOG_LEVEL: process.env.CODECLM_LOG_LEVEL ?? 'ERROR',
  };
  delete env.CODECLM_ENCRYPTION_KEY;
  const workers = Array.from(
    { length: opts.workers },
    (_, i) =>
      new WorkerProcess(
        `w${i}`,
        env,
        ['--config', configFile, '--concurrency', '32'],
        path.join(dir, `worker-${i}.log`),
      ),
  );
  for (const w of workers) w.start();

  let workerKills = 0;
  let serverKills = 0;
  let unplanned = 0;
  let gracefulStops = 0;
  let client: Client | undefined;
  const summaryBase = { run_id: runId, dir };
  try {
    // Start the run through the CLI, as a user would, against TEMPORAL_ADDRESS.
    await startRunDetached({ seedsFile: path.join(dir, 'seeds.jsonl'), outDir, configFile, runId, env });

    client = new Client({ connection: await Connection.connect({ address }) });
    const handle = client.workflow.getHandle<typeof codeclmRun>(runId);
    const deadline = started + (opts.timeoutMs ?? 30 * 60_000);
    const killEvery = opts.killEveryMs ?? 8000;
    let nextKill = Date.now() + killEvery * (0.5 + rand());
    const serverKillAfter = opts.serverKillAfter ?? 2;
    let last: RunProgress | undefined;
    let lastLog = 0;
    let status = 'RUNNING';

    while (Date.now() < deadline) {
      try {
        status = (await handle.describe()).status.name;
        if (status === 'RUNNING')
          last = await client.withDeadline(Date.now() + 3000, () => handle.query(progressQuery));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw err;
        // The server is down or restarting: keep going.
      }
      if (status !== 'RUNNING' && status !== 'CONTINUED_AS_NEW') break;
      if (last && Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        const c = last.counters;
        log(
          `${last.phase}: encoded ${c.encoded}/${c.seeds}, instructions ${c.instructions}, kept ${c.kept}, dropped ${c.dropped}, failed ${c.failed}; kills ${workerKills}+${serverKills}`,
        );
      }
      // Workers that died on their own (e.g. lost the server) are restarted too, and counted.
      for (const w of workers) {
        if (!w.alive && !w.planned) {
          unplanned++;
          log(`${w.name} exited on its own; restarting`);
          w.start();
        }
      }
      if (Date.now() >= nextKill) {
        nextKill = Date.now() + killEvery * (0.5 + rand());
        if (serverKills === 0 && workerKills >= serverKillAfter && server) {
          log('SIGKILL server');
          server.process.kill('SIGKILL');
          await server.exited;
          serverKills++;
          await sleep(1000 + rand() * 2000);
          server = await startDevServer(serverOpts);
          log('server restarted on the same state file');
        } else {
          const w = workers[Math.floor(rand() * workers.length)]!;
          log(`SIGKILL ${w.name}`);
          await w.kill('SIGKILL');
          workerKills++;
          await sleep(rand() * 1500);
          w.start();
        }
      }
      await sleep(500);
    }
    if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW')
      throw new Error(`run ${runId} did not finish within ${opts.timeoutMs ?? 30 * 60_000} ms`);

    let result: RunResult | undefined;
    try {
      result = await handle.result();
    } catch (err) {
      log(`run ended ${status}: ${(err as Error).message}`);
    }
    // Graceful stop: SIGTERM every worker, each must exit 0.
    for (const w of workers) {
      if (!w.alive || !(await w.ready())) continue;
      const exit = await w.kill('SIGTERM');
      if (exit.code === 0) gracefulStops++;
      else log(`${w.name} did not stop cleanly on SIGTERM: ${JSON.stringify(exit)}`);
    }
    const counters = result?.counters ?? last?.counters;
    // Instructions removed after decode (duplicates) count among `instructions`: an outcome, like dropped.
    const removed = counters
      ? counters.duplicatesRemoved +
        (counters.nearDuplicatesRemoved ?? 0) +
        (counters.contaminatedRemoved ?? 0)
      : 0;
    const check = checkDataset(outDir, counters && { ...counters, dropped: counters.dropped + removed });
    const summary: ChaosSummary = {
      kept: check.kept,
      failed: check.failed,
      dropped: check.dropped,
      instructions: check.instructions,
      lost: check.lost,
      duplicates: check.duplicates,
      worker_kills: workerKills,
      server_kills: serverKills,
      worker_restarts_unplanned: unplanned,
      graceful_stops: gracefulStops,
      wall_s: Math.round((Date.now() - started) / 100) / 10,
      state: status.toLowerCase(),
      sim_faults: sim.stats().faults,
      ...summaryBase,
    };
    if (!opts.keep && summary.lost === 0 && summary.duplicates === 0 && status === 'COMPLETED')
      fs.rmSync(dir, { recursive: true, force: true });
    return summary;
  } finally {
    for (const w of workers) if (w.alive) await w.kill('SIGKILL');
    await client?.connection.close().catch(() => undefined);
    await server?.stop();
    await sim.close();
  }
}

export interface DatasetCheck {
  kept: number;
  dropped: number;
  failed: number;
  instructions: number;
  lost: number;
  duplicates: number;
  details: string[];
}

/** Compares dataset.jsonl with the per-record files and the run's counters. */
export function checkDataset(outDir: string, counters?: RunProgress['counters']): DatasetCheck {
  const paths = runPaths(outDir);
  const details: string[] = [];
  const lines = fs.existsSync(paths.dataset)
    ? fs.readFileSync(paths.dataset, 'utf8').split('\n').filter(Boolean)
    : [];
  const records = lines.map((l) => JSON.parse(l) as { id: string; instruction: string; response: string });
  const ids = new Set<string>();
  const pairs = new Set<string>();
  let duplicates = 0;
  for (const r of records) {
    if (ids.has(r.id)) {
      duplicates++;
      details.push(`duplicate id ${r.id}`);
    }
    ids.add(r.id);
    const pair = JSON.stringify([r.instruction, r.response]);
    if (pairs.has(pair)) {
      duplicates++;
      details.push(`duplicate pair at id ${r.id}`);
    }
    pairs.add(pair);
  }
  let lost = 0;
  for (const file of listJsonFiles(paths.records)) {
    const id = path.basename(file, '.json');
    if (!ids.has(id)) {
      lost++;
      details.push(`record ${id} written but not in dataset.jsonl`);
    }
  }
  const c = counters ?? { kept: 0, dropped: 0, failed: 0, instructions: 0 };
  const unknown = Math.abs(c.instructions - c.kept - c.dropped - c.failed);
  if (unknown) details.push(`${unknown} instruction(s) with no known outcome`);
  lost += unknown;
  if (c.kept !== records.length) {
    details.push(`kept counter ${c.kept} but dataset.jsonl has ${records.length} lines`);
    lost += Math.abs(c.kept - records.length);
  }
  return {
    kept: records.length,
    dropped: c.dropped,
    failed: c.failed,
    instructions: c.instructions,
    lost,
    duplicates,
    details,
  };
}
