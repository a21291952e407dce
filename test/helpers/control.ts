import fs from 'node:fs';
import path from 'node:path';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { createWorker } from '../../src/worker';
import type { DatasetRecord } from '../../src/schemas/records';
import { testAddress, uniqueQueue } from './env';

/**
 * A real in-process worker for the control/poison/scale tests: LLM result cache off (so scripted
 * simulator faults are always met by a real request).
 */
export interface ControlWorker {
  worker: Worker;
  taskQueue: string;
  client: Client;
  stop(): Promise<void>;
}

export async function startControlWorker(name: string, concurrency = 32): Promise<ControlWorker> {
  const taskQueue = uniqueQueue(name);
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker = await createWorker({ connection, taskQueue, concurrency, cache: false });
  const running = worker.run();
  const client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
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

export function readDataset(outDir: string): DatasetRecord[] {
  const file = path.join(outDir, 'dataset.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DatasetRecord);
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
