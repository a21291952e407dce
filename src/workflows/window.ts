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

export interface DecodeAheadOptions {
  /** First batch to decode (a continued entry starts where the last segment stopped). */
  from: number;
  /** Batches in all. */
  batches: number;
  /** Items in flight at once; also how low the queue runs before the next batch is decoded. */
  window: number;
  /** Awaited before each decode and each start (pause). */
  gate: () => Promise<void>;
  /** True: start nothing new (in flight finishes; what is queued stays queued). */
  enough: () => boolean;
  /** True: decode no more batches; start what is queued, then return (to continue-as-new). */
  wantsStop: () => boolean;
}

/**
 * The decode-ahead queue of a pool entry, next to the sliding window it feeds: a batch of
 * instructions is decoded while the queue holds fewer than `window` (so the window never drains
 * between batches, and at most one decode runs at a time), and each decoded item starts as soon as a
 * slot is free. Once `wantsStop` says so, no further batch is decoded and the loop ends when all that
 * was decoded has started, so nothing decoded is ever carried over by continue-as-new; `next` is the
 * first batch not decoded. A failure of `decode` or `start` ends the loop (after what is in flight
 * has settled) with that error: item failures must be handled inside them.
 */
export class DecodeAhead<T> {
  /** Decoded items waiting for a slot. */
  readonly queued: T[] = [];
  /** Items started and not finished. */
  inFlight = 0;
  /** The next batch to decode. */
  next: number;
  private decoding = false;
  private stopping = false;
  private fatal: unknown;

  constructor(private readonly opts: DecodeAheadOptions) {
    this.next = opts.from;
  }

  /** Decodes ahead and starts every item, until all batches are done (or enough, or stopping). */
  async run(
    decode: (batch: number, found: (item: T) => void) => Promise<void>,
    start: (item: T) => Promise<void>,
  ): Promise<void> {
    const o = this.opts;
    for (;;) {
      if (this.fatal !== undefined) throw this.fatal;
      if (o.enough()) break;
      if (!this.decoding && !this.stopping && this.queued.length < o.window && this.next < o.batches) {
        await o.gate();
        this.decoding = true;
        void this.decodeBatch(decode, this.next++);
      }
      if (this.queued.length === 0) {
        if (this.decoding) {
          await condition(() => !this.decoding || this.queued.length > 0 || o.enough());
          continue;
        }
        break; // all decoded and started, or stopping
      }
      await condition(() => this.inFlight < o.window || this.fatal !== undefined || o.enough());
      if (this.fatal !== undefined || o.enough()) continue;
      await o.gate();
      if (o.enough()) continue;
      const item = this.queued.shift()!;
      this.inFlight++;
      start(item).then(
        () => this.inFlight--,
        (err: unknown) => {
          this.inFlight--;
          this.fatal ??= err;
        },
      );
      if (!this.stopping && o.wantsStop()) this.stopping = true;
    }
    await condition(() => this.inFlight === 0 && !this.decoding);
    if (this.fatal !== undefined) throw this.fatal;
  }

  private async decodeBatch(
    decode: (batch: number, found: (item: T) => void) => Promise<void>,
    batch: number,
  ): Promise<void> {
    try {
      await decode(batch, (item) => this.queued.push(item));
    } catch (err) {
      this.fatal ??= err;
    } finally {
      this.decoding = false;
    }
  }
}
