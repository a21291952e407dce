import { AdaptiveConcurrency } from '../src/llm/adaptive';
import { estimateTokens, LimiterRegistry, RateLimiter, WindowMeter } from '../src/llm/limiter';
import type { ResolvedRole } from '../src/schemas/config';
import { FakeClock, flushMicrotasks } from './helpers/clock';

/**
 * The client-side limiter on a fake clock: no real sleeps, no timing sensitivity. Time only moves
 * when a test advances it (test/helpers/clock.ts).
 */

/** Max number of events (or sum of amounts) in any window of `windowMs`, sliding over event times. */
function maxInWindow(events: { t: number; amount: number }[], windowMs = 60_000): number {
  let best = 0;
  let sum = 0;
  let lo = 0;
  for (let hi = 0; hi < events.length; hi++) {
    sum += events[hi]!.amount;
    while (events[lo]!.t <= events[hi]!.t - windowMs) sum -= events[lo++]!.amount;
    best = Math.max(best, sum);
  }
  return best;
}

describe('WindowMeter', () => {
  test('never more than the capacity in any rolling window, paced evenly', () => {
    const m = new WindowMeter(120, 4);
    const sends: { t: number; amount: number }[] = [];
    // A caller that always wants to send: poll every 5 ms for 5 minutes.
    for (let t = 0; t < 300_000; t += 5) {
      while (m.delay(1, t) === 0) {
        m.take(1, t);
        sends.push({ t, amount: 1 });
      }
    }
    expect(maxInWindow(sends)).toBeLessThanOrEqual(120);
    // Holds the rate: 5 minutes at 120/min.
    expect(sends.length).toBeGreaterThanOrEqual(600 - 1);
    expect(sends.length).toBeLessThanOrEqual(600);
    // Pacing: the even interval (500 ms) with at most a burst-sized pause as the first minute's
    // burst leaves the window, never a minute's worth of requests at once.
    const gaps = sends.slice(4).map((s, i) => s.t - sends[3 + i]!.t);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(4 * 500 + 5);
    expect(gaps.filter((g) => g > 505).length).toBeLessThanOrEqual(5);
  });

  test('corrections give back over-reserved amounts', () => {
    const m = new WindowMeter(1000, 1000);
    const e = m.take(800, 0);
    expect(m.delay(500, 0)).toBeGreaterThan(0);
    m.correct(e, 300, 10);
    expect(m.used(10)).toBe(300);
    expect(m.delay(500, 10)).toBe(0);
  });

  test('a request bigger than the capacity goes alone once the window is empty', () => {
    const m = new WindowMeter(100, 100);
    m.take(50, 0);
    expect(m.delay(500, 1000)).toBe(59_000);
    expect(m.delay(500, 60_000)).toBe(0);
  });
});

describe('RateLimiter (rpm and tpm over a window, fake clock)', () => {
  test('rpm: concurrent callers get at most the cap per minute, and close to it', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ rpm: 600 }, { clock, headroom: 0.02 });
    const grants: { t: number; amount: number }[] = [];
    let stop = false;
    // 40 callers, each sending as soon as it is allowed, with 1 s "latency" per request.
    const callers = Array.from({ length: 40 }, async () => {
      while (!stop) {
        const r = await limiter.acquire(100);
        grants.push({ t: r.requestEntry!.t, amount: 1 });
        await clock.sleep(1000);
        limiter.settle(r, 100);
      }
    });
    await clock.advance(180_000);
    stop = true;
    await clock.advance(10_000);
    await Promise.all(callers);
    const inRun = grants.filter((g) => g.t < 180_000);
    expect(maxInWindow(inRun)).toBeLessThanOrEqual(588);
    // 3 minutes at 588/min.
    expect(inRun.length).toBeGreaterThanOrEqual(3 * 588 - 2);
    expect(inRun.length).toBeLessThanOrEqual(3 * 588 + 12);
  });

  test('timers that fire late (a busy event loop) do not lower the rate', async () => {
    const clock = new FakeClock(40);
    const limiter = new RateLimiter({ rpm: 600 }, { clock, headroom: 0.02 });
    const grants: { t: number; amount: number }[] = [];
    let stop = false;
    const callers = Array.from({ length: 40 }, async () => {
      while (!stop) {
        const r = await limiter.acquire(1);
        grants.push({ t: r.requestEntry!.t, amount: 1 });
        await clock.sleep(1000);
        limiter.settle(r, 1);
      }
    });
    await clock.advance(120_000);
    stop = true;
    await clock.advance(10_000);
    await Promise.all(callers);
    const inRun = grants.filter((g) => g.t < 120_000);
    expect(maxInWindow(inRun)).toBeLessThanOrEqual(588);
    expect(inRun.length).toBeGreaterThanOrEqual(2 * 588 - 10);
  });

  test('tpm: estimates reserve, corrections from usage release, never over the cap per minute', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ tpm: 10_000 }, { clock, headroom: 0 });
    const actual: { t: number; amount: number }[] = [];
    let stop = false;
    // Each call estimates 1,000 tokens (prompt + max_tokens) but really uses 250.
    const callers = Array.from({ length: 20 }, async () => {
      while (!stop) {
        const r = await limiter.acquire(1000);
        const t = r.tokenEntry!.t;
        await clock.sleep(500);
        limiter.settle(r, 250);
        actual.push({ t, amount: 250 });
      }
    });
    await clock.advance(120_000);
    stop = true;
    await clock.advance(61_000);
    await Promise.all(callers);
    const inRun = actual.filter((a) => a.t < 120_000);
    expect(maxInWindow(inRun)).toBeLessThanOrEqual(10_000);
    // Corrections matter: without them only 10 calls a minute would fit (1,000 estimated each);
    // with them the real 250 tokens count, close to 40 calls a minute.
    const perMinute = inRun.length / 2;
    expect(perMinute).toBeGreaterThan(30);
    expect(perMinute).toBeLessThanOrEqual(40);
  });

  test('a 429 holds the whole bucket until Retry-After', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({}, { clock });
    expect(limiter.unlimited).toBe(true);
    limiter.rateLimited(5_000);
    let granted = -1;
    void limiter.acquire(10).then(() => (granted = clock.now()));
    await clock.advance(4_900, 100);
    expect(granted).toBe(-1);
    await clock.advance(200, 100);
    expect(granted).toBe(5_000);
  });

  test('waiting callers are served first come, first served and can be aborted', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ rpm: 60 }, { clock, headroom: 0, burstSeconds: 1 });
    const order: number[] = [];
    const ac = new AbortController();
    const aborted = limiter.acquire(1, ac.signal).then(
      () => 'granted',
      () => 'aborted',
    );
    void aborted;
    const rest = [1, 2, 3].map((i) => limiter.acquire(1).then(() => order.push(i)));
    ac.abort(new Error('cancelled'));
    await clock.advance(3_500, 50);
    await Promise.all(rest);
    expect(await aborted).toBe('granted'); // the first one was free at t=0: granted synchronously
    expect(order).toEqual([1, 2, 3]);
    const ac2 = new AbortController();
    const p = limiter.acquire(1, ac2.signal);
    ac2.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
  });
});

describe('AdaptiveConcurrency (AIMD)', () => {
  test('backs off on 429 once per window, then climbs back to the ceiling on successes', () => {
    const a = new AdaptiveConcurrency({ max: 32 });
    expect(a.limit).toBe(32);
    // A full window of requests, all answered 429: one halving, not 32.
    const slots = Array.from({ length: 32 }, () => a.tryAcquire()!);
    expect(a.tryAcquire()).toBeUndefined();
    for (const s of slots) a.release(s, 'rateLimited');
    expect(a.limit).toBe(16);
    expect(a.decreases).toBe(1);
    // Requests started after the decrease that also get 429: another halving.
    const again = Array.from({ length: 16 }, () => a.tryAcquire()!);
    for (const s of again) a.release(s, 'rateLimited');
    expect(a.limit).toBe(8);
    // Successes: about +1 per window of successes (additive increase) up to the ceiling.
    let rounds = 0;
    while (a.limit < 32 && rounds < 1000) {
      const window = Array.from({ length: a.limit }, () => a.tryAcquire()!);
      for (const s of window) a.release(s, 'ok');
      rounds++;
    }
    expect(a.limit).toBe(32);
    expect(rounds).toBeGreaterThanOrEqual(20);
    expect(rounds).toBeLessThanOrEqual(30);
    // Other errors say nothing about the rate limit.
    const s = a.tryAcquire()!;
    a.release(s, 'error');
    expect(a.limit).toBe(32);
  });

  test('never below the floor; waiters are released as the limit allows', async () => {
    const a = new AdaptiveConcurrency({ max: 2, min: 1 });
    const s1 = a.tryAcquire()!;
    const s2 = a.tryAcquire()!;
    a.release(s1, 'rateLimited');
    expect(a.limit).toBe(1);
    let got = false;
    const waiting = a.acquire().then((s) => {
      got = true;
      return s;
    });
    await flushMicrotasks();
    expect(got).toBe(false); // still one in flight at limit 1
    a.release(s2, 'rateLimited'); // started before the decrease: no second cut
    expect(a.limit).toBe(1);
    const s3 = await waiting;
    expect(a.inFlight).toBe(1);
    a.release(s3, 'rateLimited');
    expect(a.limit).toBe(1);
  });
});

describe('LimiterRegistry', () => {
  const role = (model: string, extra: Partial<ResolvedRole> = {}): ResolvedRole => ({
    baseURL: 'http://sim/v1',
    model,
    apiKeyEnv: 'OPENAI_API_KEY',
    maxTokens: 1024,
    maxConcurrency: 8,
    structuredOutput: 'json_schema',
    timeoutMs: 1000,
    ...extra,
  });

  test('roles on the same model share one bucket (the lower limit), each has its own concurrency', () => {
    const reg = new LimiterRegistry();
    const strong = reg.for('strong', role('m1', { rpm: 600 }));
    const judge = reg.for('judge', role('m1', { rpm: 300 }));
    const target = reg.for('target', role('m2', { rpm: 600 }));
    expect(strong.rate).toBe(judge.rate);
    expect(strong.rate.limits.rpm).toBe(300);
    expect(target.rate).not.toBe(strong.rate);
    expect(strong.concurrency).not.toBe(judge.concurrency);
    expect(reg.for('strong', role('m1', { rpm: 600 }))).toBe(strong);
  });

  test('endpoint scope: everything behind one endpoint shares the cap', () => {
    const reg = new LimiterRegistry({ scope: 'endpoint' });
    expect(reg.for('strong', role('m1', { rpm: 600 })).rate).toBe(
      reg.for('target', role('m2', { rpm: 600 })).rate,
    );
  });

  test('a permit settles once: done, rate limited or failed', async () => {
    const clock = new FakeClock();
    const reg = new LimiterRegistry({ clock });
    const l = reg.for('strong', role('m1', { maxConcurrency: 4 }));
    const p = await l.acquire(estimateTokens(400, 100));
    expect(l.concurrency.inFlight).toBe(1);
    p.rateLimited(2000);
    p.done(10);
    expect(l.concurrency.inFlight).toBe(0);
    expect(l.concurrency.limit).toBe(2);
    expect(l.rate.delay(1)).toBe(2000);
    expect(estimateTokens(400, 100)).toBe(200);
  });
});
