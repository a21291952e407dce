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
