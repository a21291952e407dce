import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { createLlmClient } from './llm/client';
import type { ResolvedRole, RoleName } from './schemas/config';
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
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? (env.CODECLM_TASK_QUEUE?.trim() || DEFAULT_TASK_QUEUE),
    workflowsPath: workflowsPath(),
    activities: { ...createActivities(deps), ...createScheduleActivities() },
    dataConverter: opts.dataConverter ?? dataConverterFromEnv(opts.env ?? process.env),
    maxConcurrentActivityTaskExecutions: concurrency,
    maxConcurrentWorkflowTaskExecutions: 40,
    maxCachedWorkflows: 500,
    shutdownGraceTime: '10 seconds',
  });
}
