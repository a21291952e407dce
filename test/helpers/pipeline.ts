import { NativeConnection, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { createActivities } from '../../src/activities';
import { createLlmClient } from '../../src/llm/client';
import { autoHeartbeat, createWorker } from '../../src/worker';
import { testAddress, uniqueQueue } from './env';

// Config builders live in ./config; re-exported for the tests that take them from here.
export { simConfig } from './config';

export interface TestWorker {
  worker: Worker;
  taskQueue: string;
  client: Client;
  stop(): Promise<void>;
}

/**
 * A real worker (real activities, real LLM boundary) on its own task queue of the suite's server,
 * or of the server at `address`.
 */
export async function startTestWorker(
  name: string,
  opts: { concurrency?: number; cache?: false; address?: string } = {},
): Promise<TestWorker> {
  const taskQueue = uniqueQueue(name);
  const address = opts.address ?? testAddress();
  const connection = await NativeConnection.connect({ address });
  const worker = await createWorker({
    connection,
    taskQueue,
    concurrency: opts.concurrency,
    cache: opts.cache,
  });
  return runTestWorker(worker, connection, taskQueue, address);
}

/**
 * A worker running test workflows (`workflowsPath`, e.g. test/workflows/llmCall.ts) with the
 * project's real activities and LLM client, reading keys from `env`, on its own task queue of the
 * suite's server. `heartbeat`: the production heartbeat interceptor, as createWorker installs it.
 */
export async function startActivityTestWorker(opts: {
  name: string;
  workflowsPath: string;
  env: NodeJS.ProcessEnv;
  heartbeat?: boolean;
}): Promise<TestWorker> {
  const taskQueue = uniqueQueue(opts.name);
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: opts.workflowsPath,
    activities: createActivities({ llm: (role, cfg) => createLlmClient(role, cfg, opts.env), now: Date.now }),
    ...(opts.heartbeat ? { interceptors: { activity: [autoHeartbeat] } } : {}),
  });
  return runTestWorker(worker, connection, taskQueue, testAddress());
}

/** Runs `worker`, with a client of the same server; stop() shuts it down and closes both connections. */
async function runTestWorker(
  worker: Worker,
  connection: NativeConnection,
  taskQueue: string,
  address: string,
): Promise<TestWorker> {
  const running = worker.run();
  const client = new Client({ connection: await Connection.connect({ address }) });
  return {
    worker,
    taskQueue,
    client,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
    },
  };
}
