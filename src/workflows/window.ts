import { condition } from '@temporalio/workflow';

/**
 * Runs `work` over items with at most `limit` in flight (a sliding window, not fixed batches: a
 * slot is refilled as soon as any item finishes). `gate` is awaited before each start, which is
 * how pause holds back new work while in-flight work finishes.
 */
export async function slidingWindow<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
  gate: () => Promise<void> = async () => undefined,
): Promise<void> {
  let inFlight = 0;
  let firstError: unknown;
  const running: Promise<void>[] = [];
  for (let i = 0; i < items.length; i++) {
    await condition(() => inFlight < limit || firstError !== undefined);
    if (firstError !== undefined) break;
    await gate();
    inFlight++;
    running.push(
      work(items[i]!, i).then(
        () => {
          inFlight--;
        },
        (err: unknown) => {
          inFlight--;
          firstError ??= err;
        },
      ),
    );
  }
  await Promise.all(running);
  if (firstError !== undefined) throw firstError;
}

/**
 * The sliding window over the indexes from..to-1 that can stop early: `stop` is checked before each
 * start (after the gate), and once it says true no new item starts while the ones in flight finish.
 * Returns the first index not started, so a workflow can continue-as-new from there. Keeps no list
 * of finished items, so its state stays as small as the window at any item count.
 */
export async function windowRange(
  from: number,
  to: number,
  opts: { limit: number; gate?: () => Promise<void>; stop?: () => boolean },
  work: (index: number) => Promise<void>,
): Promise<number> {
  let inFlight = 0;
  let firstError: unknown;
  let next = from;
  while (next < to) {
    await condition(() => inFlight < opts.limit || firstError !== undefined);
    if (firstError !== undefined) break;
    if (opts.gate) await opts.gate();
    if (opts.stop?.()) break;
    inFlight++;
    work(next++).then(
      () => {
        inFlight--;
      },
      (err: unknown) => {
        inFlight--;
        firstError ??= err;
      },
    );
  }
  await condition(() => inFlight === 0);
  if (firstError !== undefined) throw firstError;
  return next;
}
