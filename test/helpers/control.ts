import { startTestWorker, type TestWorker } from './pipeline';

/**
 * A real in-process worker for the control/poison/scale tests: LLM result cache off (so scripted
 * simulator faults are always met by a real request).
 */
export type ControlWorker = TestWorker;

/** On the suite's dev server, or on the server at `address` (the cluster tests). */
export function startControlWorker(name: string, concurrency = 32, address?: string): Promise<ControlWorker> {
  return startTestWorker(name, { concurrency, cache: false, address });
}

export { readDataset } from './files';

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
