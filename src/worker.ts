import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { createLlmClient } from './llm/client';
import { roleNames, type ResolvedRole, type RoleName } from './schemas/config';
import { roleQueue } from './workflows/queues';
import type { LlmClient } from './llm/types';
import { DEFAULT_TASK_QUEUE } from './temporal/connection';
import type { DataConverter } from '@temporalio/common';
import { dataConverterFromEnv } from './codec/converter';
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
  /** The LLM result cache (src/cache): a config `cache` section, or false for none; default from env. */
  cache?: Partial<CacheConfig> | false;
  /**
   * Requests per minute per role for the whole cluster (the config's roles.<role>.rpm), applied as
   * Temporal task-queue rate limits on the role queues. Every worker of a cluster must use the same
   * values: the server applies the limit the latest poller sent.
   */
  roleRpm?: Partial<Record<RoleName, number>>;
}

/** LLM clients are built once per distinct role config and reused by every activity. */
export function llmClientFactory(env: NodeJS.ProcessEnv = process.env, cache?: CacheStore): ActivityDeps['llm'] {
  const clients = new Map<string, LlmClient>();
  return (role: RoleName, cfg: ResolvedRole) => {
    const key = `${role}\u0000${JSON.stringify(cfg)}`;
    let client = clients.get(key);
    if (!client) {
      client = createLlmClient(role, cfg, env);
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
    llm: opts.deps?.llm ?? llmClientFactory(opts.env, openCache(resolveCacheSettings(env, opts.cache))),
    now: opts.deps?.now ?? Date.now,
  };
  const concurrency = opts.concurrency ?? 64;
  const dataConverter = opts.dataConverter ?? dataConverterFromEnv(opts.env ?? process.env);
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? (env.CODECLM_TASK_QUEUE?.trim() || DEFAULT_TASK_QUEUE),
    workflowsPath: workflowsPath(),
    activities: { ...createActivities(deps), ...createScheduleActivities() },
    dataConverter,
    maxConcurrentActivityTaskExecutions: concurrency,
    maxConcurrentWorkflowTaskExecutions: 40,
    maxCachedWorkflows: 500,
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
        dataConverter,
        maxConcurrentActivityTaskExecutions: concurrency,
        ...(rpm ? { maxTaskQueueActivitiesPerSecond: rpm / 60 } : {}),
        shutdownGraceTime: '10 seconds',
      });
    }),
  );
  return withLlmWorkers(main, llmWorkers);
}

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
