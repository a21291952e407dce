import path from 'node:path';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type Workflow,
  type WorkflowHandle,
} from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ResolvedConfig } from '../schemas/config';
import { connectClient, connectWorker, defaultTaskQueue, type TemporalTarget } from '../temporal/connection';
import type { DevServer } from '../temporal/devServer';
import { createWorker } from '../worker';
import { rolesRpm } from './control';
import { useSimulatorIfNoProvider } from './offline';
import { codeclmHome, embeddedPort, ensureTemporal, leaseEmbedded } from './runtime';
import { quiesce } from './serverLease';
import { temporalAnswers } from '../temporal/devServer';
import { workerLogsToFile } from '../temporal/logging';
import { UsageError } from './command';
import { MAX_ID_LENGTH } from '../workflows/ids';

/**
 * The process side of `run` and `eval`: where Temporal is (TEMPORAL_ADDRESS, or the embedded dev
 * server), the offline simulator when no provider is configured, a client, and an in-process worker
 * on demand. `close()` stops what this process started, in reverse order.
 */
export interface Session {
  client: Client;
  target: TemporalTarget;
  /** True when no TEMPORAL_ADDRESS was given (embedded defaults). */
  embedded: boolean;
  /** Set when this process started the dev server. */
  server?: DevServer;
  /** The config with the simulator's endpoint filled in when it is used. */
  config: ResolvedConfig;
  startWorker(): Promise<void>;
  /**
   * When a call failed: a plain sentence if the embedded server no longer answers (it was stopped
   * or died under this command), instead of the transport error it caused.
   */
  serverGone(): Promise<string | undefined>;
  close(): Promise<void>;
}

export async function openSession(config: ResolvedConfig, hasConfigFile: boolean): Promise<Session> {
  // Before looking for a simulator or server another command started: they stay up while we use them.
  const lease = await leaseEmbedded();
  const offline = await useSimulatorIfNoProvider(config, hasConfigFile);
  const temporal = await ensureTemporal();
  // Started here, so it is ours to stop: a lease would only hold up another owner of the port later.
  if (temporal.server) lease?.release();
  const client = await connectClient(temporal.target);
  let worker: Worker | undefined;
  let workerConnection: NativeConnection | undefined;
  let workerRun: Promise<void> | undefined;
  return {
    client,
    target: temporal.target,
    embedded: !temporal.target.explicit,
    server: temporal.server,
    config: offline.config,
    async startWorker() {
      if (worker) return;
      // The worker's logs (an outage's retries log a stack trace per attempt) go to a file, named
      // once; the progress output shows a one-line retry summary instead (src/cli/retries.ts).
      const logFile = workerLogsToFile(path.join(codeclmHome(), 'logs'));
      process.stderr.write(`codeclm: worker logs: ${logFile}\n`);
      workerConnection = await connectWorker(temporal.target);
      worker = await createWorker({
        connection: workerConnection,
        namespace: temporal.target.namespace,
        cache: offline.config.cache,
        roleRpm: rolesRpm(offline.config),
      });
      workerRun = worker.run();
    },
    async serverGone() {
      if (temporal.target.explicit || (await temporalAnswers(temporal.target.address, 2000)))
        return undefined;
      return (
        `the embedded Temporal server at ${temporal.target.address} stopped while this command was ` +
        'using it; the workflow is kept in its state file: run the same command again to start a new ' +
        'server and attach to it'
      );
    },
    async close() {
      if (worker) {
        worker.shutdown();
        await workerRun;
      }
      await workerConnection?.close();
      await client.connection.close();
      // Other commands attached to the server (and simulator) started here finish first.
      const say = (line: string) => process.stderr.write(`${line}\n`);
      const gate = temporal.server ? await quiesce(embeddedPort(), { say }) : undefined;
      try {
        await offline.stop();
        await temporal.server?.stop();
      } finally {
        gate?.done();
      }
    },
  };
}

/** Starts a workflow under a user-visible id, or attaches to the existing one (never a second). */
export async function startOrAttachWorkflow<W extends Workflow>(
  client: Client,
  workflow: W,
  opts: {
    id: string;
    noun: string;
    outDir: string;
    taskQueue?: string;
    args: Parameters<W>;
    memo: Record<string, unknown>;
  },
): Promise<WorkflowHandle<W>> {
  try {
    const handle = await client.workflow.start(workflow, {
      workflowId: opts.id,
      taskQueue: opts.taskQueue ?? defaultTaskQueue(),
      args: opts.args,
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      memo: opts.memo,
    } as Parameters<Client['workflow']['start']>[1]);
    process.stderr.write(`codeclm: ${opts.noun} ${opts.id} started (out: ${opts.outDir})\n`);
    return handle as WorkflowHandle<W>;
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    process.stderr.write(`codeclm: ${opts.noun} ${opts.id} already exists; attaching to it\n`);
    return client.workflow.getHandle<W>(opts.id);
  }
}

/**
 * An id the user chose (--run-id, --eval-id): also a workflow id and a log file name. `longest`
 * gives the longest workflow id derived from it (src/workflows/ids.ts), which must fit Temporal's
 * id limit; runs check theirs once the seeds are read (src/cli/ids.ts).
 */
export function checkUserId(
  id: string,
  flagName: string,
  command: string,
  longest: (id: string) => string = (i) => i,
): string {
  if (!/^[A-Za-z0-9._-]+$/.test(id)) {
    throw new UsageError(
      `codeclm ${command}: --${flagName} may use letters, digits, '.', '_' and '-' (got "${id}")`,
    );
  }
  const max = MAX_ID_LENGTH - longest('').length;
  if (id.length > max) {
    throw new UsageError(
      `codeclm ${command}: --${flagName} is ${id.length} characters; at most ${max} fit. Temporal refuses ` +
        `workflow ids longer than ${MAX_ID_LENGTH} characters (limit.maxIDLength, PostgreSQL's ` +
        `VARCHAR(${MAX_ID_LENGTH})), and the longest workflow id made from it is ${longest('<id>')}`,
    );
  }
  return id;
}
