import type { Clock } from '../../src/llm/limiter';

/**
 * A clock for the limiter tests: no real sleeps, no timing sensitivity. Time moves only when a test
 * advances it, and every timer due by then runs, with its continuations, before time moves on.
 */
export class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; resolve(): void; reject(e: unknown): void }[] = [];

  /**
   * @param lateMs every timer fires this much late, like timers on a busy event loop
   * @param stepMs how far time moves between checks of the due timers, unless advance says
   */
  constructor(
    private readonly lateMs = 0,
    private readonly stepMs = 10,
  ) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = { at: this.t + Math.max(0, ms) + this.lateMs, resolve, reject };
      this.timers.push(timer);
      signal?.addEventListener(
        'abort',
        () => {
          this.timers = this.timers.filter((x) => x !== timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward in steps, letting every due timer and its continuations run. */
  async advance(ms: number, step = this.stepMs): Promise<void> {
    const end = this.t + ms;
    while (this.t < end) {
      this.t = Math.min(end, this.t + step);
      await flushMicrotasks();
      for (;;) {
        const due = this.timers.filter((x) => x.at <= this.t);
        if (due.length === 0) break;
        this.timers = this.timers.filter((x) => x.at > this.t);
        for (const d of due) d.resolve();
        await flushMicrotasks();
      }
    }
  }
}

/** Lets promise continuations queued now (a few levels deep) run. */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
