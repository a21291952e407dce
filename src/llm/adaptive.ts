/**
 * Adaptive concurrency (AIMD) for one LLM role: how many requests may be in flight at once.
 *
 * Starts at the role's maxConcurrency. Every success adds 1/limit (so about +1 per "round trip" of
 * the whole window); a 429 halves the limit, at most once per window: only a request that started
 * after the last decrease can cause another one, so a burst of 429s from one overfull window counts
 * once (as TCP does per RTT). No clock needed: the behaviour depends only on the order of events.
 */
export interface AimdOptions {
  /** Ceiling, and the starting limit (default: max). */
  max: number;
  min?: number;
  initial?: number;
  /** Added per full window of successes (default 1). */
  increase?: number;
  /** Multiplier on a rate-limited window (default 0.5). */
  decrease?: number;
}

export interface ConcurrencySlot {
  readonly epoch: number;
}

export type SlotOutcome = 'ok' | 'rateLimited' | 'error';

interface Waiter {
  resolve(slot: ConcurrencySlot): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class AdaptiveConcurrency {
  private current: number;
  private active = 0;
  private epochNo = 0;
  private readonly queue: Waiter[] = [];
  readonly max: number;
  readonly min: number;
  private readonly increase: number;
  private readonly decrease: number;
  /** Times the limit was cut (for stats and tests). */
  decreases = 0;

  constructor(opts: AimdOptions) {
    this.max = Math.max(1, opts.max);
    this.min = Math.max(1, Math.min(opts.min ?? 1, this.max));
    this.current = Math.min(this.max, Math.max(this.min, opts.initial ?? this.max));
    this.increase = opts.increase ?? 1;
    this.decrease = opts.decrease ?? 0.5;
  }

  /** The current limit, as a whole number of requests. */
  get limit(): number {
    return Math.max(this.min, Math.floor(this.current));
  }
  get inFlight(): number {
    return this.active;
  }
  get waiting(): number {
    return this.queue.length;
  }
  get epoch(): number {
    return this.epochNo;
  }

  /** A slot now, or undefined when the window is full (or others wait first). */
  tryAcquire(): ConcurrencySlot | undefined {
    if (this.queue.length > 0 || this.active >= this.limit) return undefined;
    this.active++;
    return { epoch: this.epochNo };
  }

  /** A slot, in FIFO order; rejects with the signal's reason if aborted while waiting. */
  acquire(signal?: AbortSignal): Promise<ConcurrencySlot> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<ConcurrencySlot>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
  }

  release(slot: ConcurrencySlot, outcome: SlotOutcome): void {
    this.active = Math.max(0, this.active - 1);
    if (outcome === 'ok') {
      this.current = Math.min(this.max, this.current + this.increase / Math.max(1, this.current));
    } else if (outcome === 'rateLimited' && slot.epoch === this.epochNo) {
      this.current = Math.max(this.min, this.current * this.decrease);
      this.epochNo++;
      this.decreases++;
    }
    this.drain();
  }

  private drain(): void {
    while (this.queue.length > 0 && this.active < this.limit) {
      const w = this.queue.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.active++;
      w.resolve({ epoch: this.epochNo });
    }
  }
}
