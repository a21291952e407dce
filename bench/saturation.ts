import type { SimRequestLog, SimStats } from '../src/sim';
import type { SimProcess } from './procs';

/**
 * The saturation measurement, the same for codeclm and for a peer on the same simulator settings:
 * from the first answered request, a warm-up, then the simulator's own counters over the measured
 * window; the busiest minute from its request log.
 */
export interface SaturationWindow {
  rpm: number;
  warmupS: number;
  measureS: number;
}

export interface SaturationRow {
  capRpm: number;
  warmupSeconds: number;
  measuredSeconds: number;
  achievedRpm: number;
  /** Answered-200 requests per minute in the measured window / the cap. */
  achievedOverCap: number;
  /** Requests since the start (warm-up included). */
  requests: number;
  answered429: number;
  /** 429 answers / all requests since the start. */
  fraction429: number;
  measuredWindow: { requests: number; answered429: number };
  /** Most 200 answers the server counted in any rolling 60 s (at the time it answered). */
  busiestMinute: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const ok = (s: SimStats) => s.byStatus['200'] ?? 0;
const limited = (s: SimStats) => s.byStatus['429'] ?? 0;

/** Waits for the first answered request (200 or 429), then measures. */
export async function measureSaturation(
  sim: SimProcess,
  w: SaturationWindow,
  startTimeoutMs = 180_000,
): Promise<SaturationRow> {
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    const s = await sim.stats();
    if (ok(s) + limited(s) > 0) break;
    if (Date.now() > deadline)
      throw new Error(`saturation: no request answered within ${startTimeoutMs / 1000} s`);
    await sleep(100);
  }
  await sleep(w.warmupS * 1000);
  const s0 = await sim.stats();
  const t0 = Date.now();
  await sleep(w.measureS * 1000);
  const s1 = await sim.stats();
  const measuredS = (Date.now() - t0) / 1000;
  const log = await sim.requests();
  const achievedRpm = ((ok(s1) - ok(s0)) / measuredS) * 60;
  return {
    capRpm: w.rpm,
    warmupSeconds: w.warmupS,
    measuredSeconds: round(measuredS, 1),
    achievedRpm: round(achievedRpm, 1),
    achievedOverCap: round(achievedRpm / w.rpm),
    requests: s1.requests,
    answered429: limited(s1),
    fraction429: round(limited(s1) / Math.max(1, s1.requests), 4),
    measuredWindow: { requests: s1.requests - s0.requests, answered429: limited(s1) - limited(s0) },
    busiestMinute: busiestMinute(log),
  };
}

/** Max number of 200 answers in any rolling 60 s, at the time the server answered (arrival + ms). */
export function busiestMinute(log: SimRequestLog[], windowMs = 60_000): number {
  const times = log
    .filter((e) => e.status === 200)
    .map((e) => Date.parse(e.time) + e.ms)
    .sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[lo]! <= times[hi]! - windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/**
 * Records the bodies of chat requests this process sends to `baseURL` (codeclm's side of the
 * saturation run), so a peer can be given the same load. The OpenAI SDK takes the global fetch
 * when a client is built, so this must be installed before the run's clients exist; `stop()`
 * stops recording and puts the original fetch back for clients built later.
 */
export function recordRequests(baseURL: string): { bodies: string[]; stop(): void } {
  const original = globalThis.fetch;
  const bodies: string[] = [];
  let on = true;
  const prefix = `${baseURL.replace(/\/+$/, '')}/chat/completions`;
  globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    if (on && typeof init?.body === 'string') {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.startsWith(prefix)) bodies.push(init.body);
    }
    return original(input, init);
  }) as typeof fetch;
  return {
    bodies,
    stop() {
      on = false;
      globalThis.fetch = original;
    },
  };
}

/** Side-by-side ratios: codeclm over the peer's share, and the peer's 429 share over codeclm's. */
export function compareRows(codeclm: SaturationRow, peer: SaturationRow): Record<string, number | string> {
  return {
    shareOfCap: round(codeclm.achievedOverCap / Math.max(1e-9, peer.achievedOverCap)),
    fraction429:
      codeclm.fraction429 === 0
        ? peer.fraction429 === 0
          ? 'both 0'
          : 'codeclm 0'
        : round(peer.fraction429 / codeclm.fraction429, 2),
    busiestMinute: round(codeclm.busiestMinute / Math.max(1, peer.busiestMinute)),
  };
}
