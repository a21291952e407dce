import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { autoHeartbeat } from './activities/attemptUsage';
import { createLlmClient } from './llm/client';
import { roleNames, type ResolvedRole, type RoleName } from './schemas/config';
import { roleQueue } from './workflows/queues';
import type { LlmClient } from './llm/types';
import { defaultTaskQueue } from './temporal/connection';
import type { DataConverter } from '@temporalio/common';
import { dataConverterFromEnv } from './codec/converter';
import { LimiterRegistry } from './llm/limiter';
import type { CacheConfig } from './schemas/config';
import type { CacheStore } from './cache/store';
import { openCache, resolveCacheSettings } from './cache/settings';
import { withCache } from './llm/cached';
import { createScheduleActivities } from './schedule/activities';

/**
 * A codeclm worker: the pipeline's workflows and activities on one task queue. `codeclm worker`
 * runs this against TEMPORAL_ADDRESS; `codeclm run` without it runs one in-process.
 */
export interface WorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** Concurrent activity executions (LLM calls in flight from this worker). */
  concurrency?: number;
  deps?: Partial<ActivityDeps>;
  env?: NodeJS.ProcessEnv;
  /** Payload encryption; default: from CODECLM_ENCRYPTION_KEY(_FILE) in `env` (src/codec). */
  dataConverter?: DataConverter;
  /**
   * Requests per minute per role for the whole cluster (the config's roles.<role>.rpm), applied as
   * Temporal task-queue rate limits on the role queues. Every worker of a cluster must use the same
   * values: the server applies the limit the latest poller sent.
   */
  roleRpm?: Partial<Record<RoleName, number>>;
  /** Client-side rpm/tpm + adaptive concurrency per role (src/llm/limiter.ts); default: this process's
   * shared registry; false: none. Ignored when `deps.llm` is given (that factory brings its own). */
  limits?: LimiterRegistry | false;
  /** Use the prebuilt, disk-cached workflow bundle (default true); false bundles from workflowsPath. */
  prebuiltBundle?: boolean;
  /** Workflow tasks processed at once (default 40) and workflows kept in the sticky cache (default 500). */
  maxConcurrentWorkflowTaskExecutions?: number;
  maxCachedWorkflows?: number;
  /** The LLM result cache (src/cache): a config `cache` section, or false for none; default from env. */
  cache?: Partial<CacheConfig> | false;
}

/** LLM clients are built once per distinct role config and reused by every activity. */
/** One limiter registry per worker process: every worker and client factory in it shares the buckets. */
export const processLimits = new LimiterRegistry();

export function llmClientFactory(
  env: NodeJS.ProcessEnv = process.env,
  cache?: CacheStore,
  limits: LimiterRegistry | false = processLimits,
): ActivityDeps['llm'] {
  const clients = new Map<string, LlmClient>();
  return (role: RoleName, cfg: ResolvedRole) => {
    const key = `${role}\u0000${JSON.stringify(cfg)}`;
    let client = clients.get(key);
    if (!client) {
      client = createLlmClient(role, cfg, env, limits ? { limiter: limits.for(role, cfg) } : {});
      if (cache) client = withCache(client, role, cfg, cache);
      clients.set(key, client);
    }
    return client;
  };
}

export function workflowsPath(): string {
  return require.resolve('./workflows');
}

export async function createWorker(opts: WorkerOptions): Promise<Worker> {
  const env = opts.env ?? process.env;
  const deps: ActivityDeps = {
    llm:
      opts.deps?.llm ??
      llmClientFactory(
        opts.env,
        openCache(resolveCacheSettings(env, opts.cache)),
        opts.limits ?? processLimits,
      ),
    now: opts.deps?.now ?? Date.now,
  };
  const concurrency = opts.concurrency ?? 64;
  const dataConverter = opts.dataConverter ?? dataConverterFromEnv(opts.env ?? process.env);
  const bundle = opts.prebuiltBundle === false ? undefined : await prebuiltWorkflowBundle(dataConverter);
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? defaultTaskQueue(env),
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath: workflowsPath() }),
    activities: { ...createActivities(deps), ...createScheduleActivities() },
    interceptors: { activity: [autoHeartbeat] },
    dataConverter,
    maxConcurrentActivityTaskExecutions: concurrency,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTaskExecutions ?? 40,
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 500,
    shutdownGraceTime: '10 seconds',
  });
  // LLM activities run on one queue per role (src/workflows/activities.ts), each with the role's
  // rpm as the queue's cluster-wide rate limit. `concurrency` applies per role.
  const llmWorkers = await Promise.all(
    roleNames.map((role) => {
      const rpm = opts.roleRpm?.[role];
      return Worker.create({
        connection: opts.connection,
        namespace: opts.namespace ?? 'default',
        taskQueue: roleQueue(main.options.taskQueue, role),
        activities: createActivities(deps),
        interceptors: { activity: [autoHeartbeat] },
        dataConverter,
        maxConcurrentActivityTaskExecutions: concurrency,
        ...(rpm ? { maxTaskQueueActivitiesPerSecond: rpm / 60 } : {}),
        shutdownGraceTime: '10 seconds',
      });
    }),
  );
  return withLlmWorkers(main, llmWorkers);
}

// Every activity heartbeats through one interceptor that keeps LLM usage in the details
// (src/activities/attemptUsage.ts): re-exported here, where workers are built.
export { autoHeartbeat };

/**
 * One Worker as the rest of the code knows it (run(), shutdown()), running the role-queue workers
 * alongside: they start and stop together, and one stopping (or failing) stops all.
 */
function withLlmWorkers(main: Worker, others: Worker[]): Worker {
  const runMain = main.run.bind(main);
  const shutdownMain = main.shutdown.bind(main);
  const stop = (w: Worker, shutdown: () => void) => {
    if (w.getState() === 'RUNNING') {
      try {
        shutdown();
      } catch {
        // already stopping
      }
    }
  };
  const shutdownAll = () => {
    stop(main, shutdownMain);
    for (const w of others) stop(w, () => w.shutdown());
  };
  main.shutdown = shutdownAll;
  main.run = async () => {
    const runs = [runMain(), ...others.map((w) => w.run())];
    for (const r of runs) r.then(shutdownAll, shutdownAll);
    const results = await Promise.allSettled(runs);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  return main;
}

// --- Prebuilt workflow bundle (issue 7) ------------------------------------------------------------
// Worker.create with workflowsPath runs webpack over the workflow code every time (seconds of CPU per
// worker). The bundle is built once, keyed by a hash of the source tree, the SDK version and the
// converter modules baked into it, and kept on disk (os.tmpdir()) and in memory; any change to the
// sources gives a new key. If bundling this way fails, the worker falls back to workflowsPath.

const bundleMemo = new Map<string, Promise<{ code: string }>>();

function sourceTreeHash(root: string, hash: crypto.Hash): void {
  for (const entry of fs
    .readdirSync(root, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) sourceTreeHash(full, hash);
    else if (/\.[cm]?[jt]s$/.test(entry.name)) hash.update(`${full}\u0000`).update(fs.readFileSync(full));
  }
}

export async function prebuiltWorkflowBundle(
  dataConverter?: DataConverter,
): Promise<{ code: string } | undefined> {
  try {
    const converters = {
      failureConverterPath: dataConverter?.failureConverterPath,
      payloadConverterPath: dataConverter?.payloadConverterPath,
    };
    const hash = crypto.createHash('sha256');
    hash.update(JSON.stringify({ converters, node: process.versions.node, sdk: sdkVersion() }));
    sourceTreeHash(__dirname, hash);
    const key = hash.digest('hex').slice(0, 24);
    let memo = bundleMemo.get(key);
    if (!memo) {
      memo = loadOrBuildBundle(key, converters);
      bundleMemo.set(key, memo);
      memo.catch(() => bundleMemo.delete(key));
    }
    return await memo;
  } catch (err) {
    process.stderr.write(
      `codeclm: prebuilt workflow bundle unavailable, bundling at start-up: ${(err as Error).message}\n`,
    );
    return undefined;
  }
}

function sdkVersion(): string {
  try {
    return (
      JSON.parse(fs.readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
}

async function loadOrBuildBundle(
  key: string,
  converters: { failureConverterPath?: string; payloadConverterPath?: string },
): Promise<{ code: string }> {
  const dir = path.join(os.tmpdir(), 'codeclm-workflow-bundles');
  const file = path.join(dir, `${key}.js`);
  try {
    return { code: fs.readFileSync(file, 'utf8') };
  } catch {
    // not built yet
  }
  const { code } = await bundleWorkflowCode({
    workflowsPath: workflowsPath(),
    ...converters,
    logger: quietBundlerLogger,
  });
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, file); // atomic: concurrent workers never read half a bundle
  return { code };
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`codeclm: workflow bundler: ${message}\n`),
  error: (message: string) => process.stderr.write(`codeclm: workflow bundler: ${message}\n`),
};
