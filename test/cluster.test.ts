import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startCluster, type Cluster } from '../src/cluster/cluster';
import { startSimulator, type Simulator } from '../src/sim/server';
import { loadConfig } from '../src/config/load';
import { maxRunIdLength } from '../src/cli/ids';
import { MAX_ID_LENGTH } from '../src/workflows/ids';
import { progressQuery, type codeclmRun } from '../src/workflows/pipeline';
import type { RunProgress } from '../src/schemas/run';
import { chaosSeeds, checkDataset, startRunDetached } from '../src/chaos/harness';
import { simRoles } from '../src/chaos/runStats';
import { describeControlScenarios } from './helpers/controlScenarios';
import { sleep, until } from './helpers/control';
import { tmpDir, uniqueQueue } from './helpers/env';
import { mirrorPrefix, putObject, s3ClientOf } from './helpers/objects';

/**
 * A real Temporal cluster (issue 13), started by the project's own scripts (src/cluster, the
 * native recipe of temporal-docker/README.md): PostgreSQL on a private port, schema by
 * temporal-sql-tool, the Temporal server built from its Go module as four service processes
 * (history, matching, frontend, worker) with the compose recipe's dynamic config, and MinIO for run
 * data. The first start on a machine builds the server and MinIO (minutes; CI does that in its own
 * steps).
 *
 * On it: the control scenarios of the dev server (pause, resume, cancel, budget), the id limit, and
 * a generation by two `codeclm worker` processes that share no directory (seeds and --out on S3)
 * and survives a SIGKILLed worker and a SIGKILLed and restarted history service with no record
 * lost or duplicated.
 */
const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');
let cluster: Cluster;
const logLines: string[] = [];

beforeAll(async () => {
  const started = Date.now();
  try {
    // CI builds the server in its own step (.ci/run) under a time limit; here only locally.
    cluster = await startCluster({ log: (line) => logLines.push(line), allowBuild: !process.env.CI });
  } catch (err) {
    // The steps' own report says which tool failed and how.
    throw new Error(`${(err as Error).message}\n--- cluster log ---\n${logLines.join('\n')}`);
  }
  const t = cluster.timings;
  console.log(
    `cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      Object.entries(t)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
        .join(', '),
  );
}, 40 * 60_000);

afterAll(async () => {
  await cluster?.stop();
  // About 50 MB of PostgreSQL data per run; CODECLM_KEEP_CLUSTER=1 keeps it (and the logs) to look at.
  if (cluster && !process.env.CODECLM_KEEP_CLUSTER) fs.rmSync(cluster.dir, { recursive: true, force: true });
});

describeControlScenarios('control on the PostgreSQL cluster', () => cluster.address);

describe('one id limit: 255', () => {
  test('the cluster refuses a workflow id of 256 characters and takes one of 255', async () => {
    const client = new Client({ connection: await Connection.connect({ address: cluster.address }) });
    try {
      const start = (id: string) =>
        client.workflow.start('codeclmRun', { workflowId: id, taskQueue: uniqueQueue('nobody'), args: [] });
      const refused = (await start('x'.repeat(MAX_ID_LENGTH + 1)).catch((e: unknown) => e)) as Error & {
        cause?: Error;
      };
      expect(refused).toBeInstanceOf(Error);
      expect(`${refused.message}: ${refused.cause?.message}`).toMatch(/length|too long|exceeds/i);
      const handle = await start('y'.repeat(MAX_ID_LENGTH));
      await handle.terminate('only checking the id limit');
    } finally {
      await client.connection.close();
    }
  });
});

test('a step that fails says which step and why, and leaves nothing running', async () => {
  const emptyCache = tmpDir('codeclm-no-server-');
  const lines: string[] = [];
  await expect(
    startCluster({
      dir: tmpDir('codeclm-cluster-fail-'),
      env: { ...process.env, CODECLM_CACHE_DIR: emptyCache },
      allowBuild: false,
      log: (line) => lines.push(line),
    }),
  ).rejects.toThrow(
    `cluster step "binaries" failed: the Temporal server 1.29.1 is not in the cache (${emptyCache}/temporal-server/1.29.1/temporal-server is missing or not executable)`,
  );
  expect(lines).toContain('codeclm: cluster: binaries ...');
  expect(lines.some((l) => l.startsWith('codeclm: cluster: binaries FAILED'))).toBe(true);
  expect(lines.some((l) => l.includes('postgres'))).toBe(false);
});

/** A `codeclm worker` process with its own working directory, CODECLM_HOME and LLM cache. */
class WorkerProcess {
  child!: ChildProcess;
  exited!: Promise<number | null>;
  readonly cacheDir: string;
  readonly logFile: string;
  constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly configFile: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.cacheDir = path.join(dir, 'llm-cache');
    this.logFile = path.join(dir, 'worker.log');
  }
  start(): void {
    const out = fs.openSync(this.logFile, 'a');
    this.child = spawn(
      process.execPath,
      [bin, 'worker', '--config', this.configFile, '--concurrency', '16'],
      {
        cwd: this.dir,
        env: { ...this.env, CODECLM_HOME: path.join(this.dir, '.codeclm'), CODECLM_CACHE: this.cacheDir },
        stdio: ['ignore', out, out],
      },
    );
    fs.closeSync(out);
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  /** Cached LLM answers this worker wrote: it did real work. */
  cachedAnswers(): number {
    if (!fs.existsSync(this.cacheDir)) return 0;
    return fs.readdirSync(this.cacheDir, { recursive: true }).length;
  }
}

describe('a generation on the cluster with 2 codeclm worker processes', () => {
  let sim: Simulator;
  let workers: WorkerProcess[] = [];
  beforeAll(async () => {
    sim = await startSimulator({ seed: 13, latencyMs: 30 });
  });
  afterAll(async () => {
    for (const w of workers) if (w.alive) w.child.kill('SIGKILL');
    await sim?.close();
  });

  test(
    'out on S3: survives a SIGKILLed worker and a SIGKILLed, restarted history service: nothing lost, no duplicates, longest run id',
    async () => {
      const minio = cluster.minio!;
      const s3 = s3ClientOf(minio);
      // Only the test's own bookkeeping is local: the workers get seeds, and write every file of
      // the run, through the bucket.
      const dir = tmpDir('codeclm-cluster-run-');
      const prefix = `runs/${path.basename(dir)}`;
      const seedsKey = `${prefix}/seeds.jsonl`;
      await putObject(s3, minio.bucket, seedsKey, chaosSeeds(40));
      const seedsFile = `s3://${minio.bucket}/${seedsKey}`;
      const outDir = `s3://${minio.bucket}/${prefix}/out`;
      const configFile = path.join(dir, 'config.json');
      fs.writeFileSync(
        configFile,
        JSON.stringify({
          roles: simRoles(sim.url, 'CODECLM_CLUSTER_TEST_KEY'),
          // Exact duplicate instructions removed (as in the chaos harness), so a repeated pair could only
          // come from a step that was written twice.
          method: { poolSize: 12, decodeBatch: 5, dedupeInstructions: true },
          limits: { size: 60, concurrency: 16, llmMaxRetryIntervalSeconds: 5 },
        }),
      );
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ...minio.clientEnv(),
        TEMPORAL_ADDRESS: cluster.address,
        TEMPORAL_NAMESPACE: cluster.namespace,
        CODECLM_TASK_QUEUE: uniqueQueue('cluster-run'),
        CODECLM_CLUSTER_TEST_KEY: 'sim-key',
        CODECLM_LOG_LEVEL: 'ERROR',
      };
      delete env.CODECLM_ENCRYPTION_KEY;
      delete env.AWS_ENDPOINT_URL;
      delete env.AWS_PROFILE;

      // The longest run id `run` accepts for this run: every derived workflow id then has 255 or fewer.
      const { max } = maxRunIdLength(40, loadConfig(configFile, env));
      const idPrefix = `cluster-${Date.now()}-`;
      const runId = idPrefix + 'x'.repeat(max - idPrefix.length);
      expect(runId.length).toBe(max);

      // Each worker in its own directory (working dir, CODECLM_HOME, LLM cache), with its own copy
      // of the config: nothing of the run is shared between them but the cluster and the bucket.
      workers = [0, 1].map((i) => {
        const home = path.join(dir, `worker-${i}`);
        fs.mkdirSync(home, { recursive: true });
        const own = path.join(home, 'config.json');
        fs.copyFileSync(configFile, own);
        return new WorkerProcess(home, env, own);
      });
      for (const w of workers) w.start();
      await startRunDetached({ seedsFile, outDir, configFile, runId, env });

      const client = new Client({ connection: await Connection.connect({ address: cluster.address }) });
      const handle = client.workflow.getHandle<typeof codeclmRun>(runId);
      const progress = async (): Promise<RunProgress | undefined> => {
        try {
          return await client.withDeadline(Date.now() + 5000, () => handle.query(progressQuery));
        } catch {
          return undefined; // the history service is restarting
        }
      };
      let unplannedRestarts = 0;
      const keepWorkersUp = (except?: WorkerProcess) => {
        for (const w of workers)
          if (w !== except && !w.alive) {
            unplannedRestarts++;
            w.start();
          }
      };
      try {
        await until(
          'a few kept pairs',
          async () => ((await progress())?.counters.kept ?? 0) >= 5,
          180_000,
          500,
        );
        // One worker dies hard; its in-flight activities time out (heartbeats) and move to the other.
        const killed = workers[0]!;
        killed.child.kill('SIGKILL');
        await killed.exited;
        await sleep(2000);

        // The history service (shards, workflow state, timers) dies hard and comes back; frontend,
        // matching and the worker service keep running.
        await cluster.killService('history', 'SIGKILL');
        await sleep(1500);
        const restartMs = await cluster.restartService('history');
        console.log(`history service restarted in ${(restartMs / 1000).toFixed(1)} s after SIGKILL`);

        const status = await until(
          'the run to finish',
          async () => {
            keepWorkersUp(killed);
            const s = (await handle.describe().catch(() => undefined))?.status.name;
            return s && s !== 'RUNNING' ? s : undefined;
          },
          8 * 60_000,
          1000,
        );
        expect(status).toBe('COMPLETED');
        const result = await handle.result();
        expect(result.outDir).toBe(outDir);
        // The run's objects, copied out of the bucket: the chaos harness's check (records vs
        // dataset.jsonl vs the run's counters) then reads them as it reads a local --out.
        const mirror = path.join(dir, 'out-mirror');
        expect(await mirrorPrefix(s3, minio.bucket, `${prefix}/out`, mirror)).toBeGreaterThan(0);
        for (const file of ['dataset.jsonl', 'report.json', 'report.md'])
          expect([file, fs.existsSync(path.join(mirror, file))]).toEqual([file, true]);
        // Instructions removed as duplicates are counted among `instructions` (kept + dropped +
        // failed + removed).
        const c = result.counters;
        const removed = c.duplicatesRemoved + (c.nearDuplicatesRemoved ?? 0) + (c.contaminatedRemoved ?? 0);
        const check = checkDataset(mirror, { ...c, dropped: c.dropped + removed });
        expect(check.details).toEqual([]);
        expect(check.lost).toBe(0);
        expect(check.duplicates).toBe(0);
        expect(check.kept).toBe(result.counters.kept);
        expect(result.counters.kept).toBeGreaterThanOrEqual(5);
        // No run data in the workers' directories: only each one's config, log, home and LLM cache.
        const own = ['.codeclm', 'config.json', 'llm-cache', 'worker.log'];
        for (const w of workers) expect(fs.readdirSync(w.dir).filter((n) => !own.includes(n))).toEqual([]);
        // Both workers did real LLM work, each in its own cache.
        expect(workers[0]!.cachedAnswers()).toBeGreaterThan(0);
        expect(workers[1]!.cachedAnswers()).toBeGreaterThan(0);
        console.log(
          `cluster run: ${result.counters.kept} kept of ${result.counters.instructions} instructions, ` +
            `${unplannedRestarts} unplanned worker restarts, run id of ${runId.length} characters`,
        );

        // The surviving worker stops gracefully.
        const survivor = workers[1]!;
        survivor.child.kill('SIGTERM');
        expect(await survivor.exited).toBe(0);
        fs.rmSync(dir, { recursive: true, force: true }); // kept when anything above failed
      } finally {
        await client.connection.close();
      }
    },
    12 * 60_000,
  );
});
