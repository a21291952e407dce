import type { ResolvedRole, RoleName } from '../schemas/config';
import { AdaptiveConcurrency, type ConcurrencySlot } from './adaptive';

/**
 * Client-side rate limiting for LLM calls, per worker process (issues 7 and 14).
 *
 * - rpm and tpm are each held by a WindowMeter: a rolling log of sends (never more than the cap in
 *   any window of 60 s plus a small arrival margin, which covers servers that count a request when
 *   it arrives) plus GCRA pacing (requests spread evenly instead of a burst at the top of each
 *   minute). No headroom by default: the limit is the configured one.
 * - rpm also has a ServerWindow: a model of the provider's own rolling window for servers that
 *   count a request only when they answer it (after the model's latency, as the simulator does).
 *   The client knows when every answer came back (the server's count of those is known exactly,
 *   including when each one leaves the window) and how long calls take; a new request is sent only
 *   if, at every moment over the next few latencies, known answers plus the expected admissions of
 *   the calls still in flight (and its own), plus a reserve of `z` standard deviations of that
 *   expectation, stay within the cap. That paces to the cap as the server counts it, not as the
 *   client sends.
 * - Tokens are estimated before a call (prompt chars / 4 + max_tokens) and corrected from the
 *   reply's usage afterwards, which gives back what the estimate over-reserved.
 * - A 429 pauses the whole bucket until its Retry-After (pacing then catches up on the even
 *   schedule, so the pause costs no capacity), widens the ServerWindow reserve a little (it narrows
 *   again over the following answers) and cuts the role's adaptive concurrency (./adaptive.ts).
 *
 * Limits from the config are "whole cluster" numbers; a worker holds them for its own process.
 * Several workers share a provider through Temporal task-queue rate limits (see bench/RESULTS.md).
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms` (rejects with the signal's reason when aborted). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** The estimate made before a call: prompt characters / 4 plus the completion budget. */
export function estimateTokens(promptChars: number, maxTokens: number): number {
  return Math.ceil(promptChars / 4) + Math.max(0, maxTokens);
}

export const WINDOW_MS = 60_000;

interface Entry {
  t: number;
  amount: number;
}

/**
 * Holds "at most `capacity` units per rolling window", paced: a GCRA (virtual scheduling) spreads
 * units at capacity/window with a tolerance of `burst` units, and a log of what was taken in the
 * last window enforces the cap exactly. Amounts may be corrected after the fact (token usage).
 */
export class WindowMeter {
  private readonly log: Entry[] = [];
  private head = 0;
  private sum = 0;
  /** GCRA theoretical arrival time. */
  private tat = -Infinity;
  private readonly interval: number;
  private readonly tolerance: number;

  constructor(
    readonly capacity: number,
    readonly burst: number,
    readonly windowMs = WINDOW_MS,
  ) {
    // Paced at exactly the capacity; the tolerance lets a waiter that woke late (a busy event loop)
    // catch up instead of losing that time for good, and the log keeps the window exact.
    this.interval = windowMs / capacity;
    this.tolerance = Math.max(0, burst - 1) * this.interval;
  }

  /** Units taken in the rolling window ending at `now`. */
  used(now: number): number {
    this.expire(now);
    return this.sum;
  }

  /** Milliseconds from `now` until `amount` may be taken (0: now). */
  delay(amount: number, now: number): number {
    this.expire(now);
    // A request bigger than the whole capacity can only go alone, into an empty window.
    const a = Math.min(amount, this.capacity);
    let wait = 0;
    if (this.sum + a > this.capacity) {
      let freed = 0;
      for (let i = this.head; i < this.log.length; i++) {
        freed += this.log[i]!.amount;
        if (this.sum - freed + a <= this.capacity) {
          wait = this.log[i]!.t + this.windowMs - now;
          break;
        }
      }
    }
    // GCRA: the unit may start once its slot, minus the tolerance, has come.
    const paced = this.tat - this.tolerance - now;
    return Math.max(0, wait, paced);
  }

  take(amount: number, now: number): Entry {
    this.expire(now);
    const entry = { t: now, amount };
    this.log.push(entry);
    this.sum += amount;
    this.tat = Math.max(this.tat, now) + Math.min(amount, this.capacity) * this.interval;
    return entry;
  }

  /** Replace an entry's amount (the estimate) with the real one. */
  correct(entry: Entry, amount: number, now: number): void {
    const delta = amount - entry.amount;
    if (delta === 0) return;
    this.expire(now);
    if (entry.t > now - this.windowMs) this.sum += delta;
    entry.amount = amount;
    this.tat += delta * this.interval;
  }

  private expire(now: number): void {
    const cutoff = now - this.windowMs;
    while (this.head < this.log.length && this.log[this.head]!.t <= cutoff) {
      this.sum -= this.log[this.head]!.amount;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.head = 0;
    }
    if (this.head === this.log.length) this.sum = 0; // no drift from corrections
  }
}

/** A call the ServerWindow is waiting to hear back from. */
export interface Flight {
  readonly sentAt: number;
}

export interface ServerWindowOptions {
  windowMs?: number;
  /** Reserve, in standard deviations of the expected in-flight admissions (default 2). */
  z?: number;
  /** Latencies remembered for the distribution (default 256). */
  samples?: number;
  /** How much a 429 widens the reserve (default 0.25); each counted answer narrows it by 1/100 of that. */
  zStep?: number;
}

/**
 * The provider's rolling window as the client can know it, for servers that count a request when
 * they answer it. Answers already received are known admissions (each leaves the window exactly
 * `windowMs` after it came back; counting at receipt is never earlier than the server counted, so
 * never too few); a call still in flight is admitted some time later, with the probability the
 * recent latencies give for a call of its age. See `fits`.
 */
export class ServerWindow {
  private readonly admits: number[] = [];
  private head = 0;
  private readonly flights = new Set<Flight>();
  private readonly latencies: number[] = [];
  private nextSample = 0;
  private sorted: number[] | undefined;
  readonly windowMs: number;
  readonly baseZ: number;
  /** The reserve now: baseZ, widened by 429s and narrowed back by answers. */
  z: number;
  private readonly maxSamples: number;
  private readonly zStep: number;

  constructor(
    readonly cap: number,
    opts: ServerWindowOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? WINDOW_MS;
    this.baseZ = opts.z ?? 2;
    this.z = this.baseZ;
    this.maxSamples = opts.samples ?? 256;
    this.zStep = opts.zStep ?? 0.25;
  }

  get inFlight(): number {
    return this.flights.size;
  }

  /** Answers received in the window that ends at `now`. */
  known(now: number): number {
    this.expire(now);
    return this.admits.length - this.head;
  }

  begin(now: number): Flight {
    const f = { sentAt: now };
    this.flights.add(f);
    return f;
  }

  /**
   * The call came back at `now`. `counted`: the server took it into its window (any answer but a
   * 429; failures without an answer count too, since the server may have counted them).
   */
  end(f: Flight, now: number, counted: boolean): void {
    if (!this.flights.delete(f)) return;
    this.sample(now - f.sentAt);
    if (counted) this.admits.push(now);
    if (counted && this.z > this.baseZ) this.z = Math.max(this.baseZ, this.z - this.zStep / 100);
  }

  /** A 429: the server was fuller than the model expected; keep a wider reserve for a while. */
  rateLimited(): void {
    this.z = Math.min(this.baseZ + 6 * this.zStep, this.z + this.zStep);
  }

  /**
   * Whether a request sent at `now` fits: for every moment `now + x` over the next latencies,
   * known(now + x) + E[in-flight admitted by then] + z * sd <= cap, the new request included.
   * Before enough latencies are known, every call in flight counts as admitted at once.
   */
  fits(now: number): boolean {
    this.expire(now);
    this.dropLost(now);
    const inFlightNow = this.flights.size;
    const sorted = this.sortedLatencies();
    if (!sorted) return this.admits.length - this.head + inFlightNow + 1 <= this.cap;
    const n = sorted.length;
    const cdf = (t: number) => upperBound(sorted, t) / n;
    const ages: number[] = [0];
    for (const f of this.flights) ages.push(now - f.sentAt);
    const before = ages.map(cdf);
    const horizon = sorted[n - 1]!;
    const step = Math.max(10, horizon / 48);
    for (let x = 0; ; x = Math.min(horizon, x + step)) {
      let mean = 0;
      let variance = 0;
      for (let i = 0; i < ages.length; i++) {
        const f0 = before[i]!;
        const p = f0 >= 1 ? 1 : (cdf(ages[i]! + x) - f0) / (1 - f0);
        mean += p;
        variance += p * (1 - p);
      }
      const known = this.countAfter(now + x - this.windowMs);
      if (known + mean + this.z * Math.sqrt(variance) > this.cap) return false;
      if (x >= horizon) return true;
    }
  }

  /** ms until the oldest answer in the window leaves it (undefined: none known). */
  untilOldestLeaves(now: number): number | undefined {
    this.expire(now);
    const oldest = this.admits[this.head];
    return oldest === undefined ? undefined : oldest + this.windowMs - now + 1;
  }

  /** When to look again after `fits` said no: the next known admission leaving the window. */
  retryIn(now: number): number {
    this.expire(now);
    const oldest = this.admits[this.head];
    const untilExpiry = oldest === undefined ? 50 : oldest + this.windowMs - now + 1;
    return Math.min(100, Math.max(5, untilExpiry));
  }

  private countAfter(cutoff: number): number {
    return this.admits.length - upperBound(this.admits, cutoff, this.head);
  }

  private sample(ms: number): void {
    if (this.latencies.length < this.maxSamples) this.latencies.push(ms);
    else this.latencies[this.nextSample] = ms;
    this.nextSample = (this.nextSample + 1) % this.maxSamples;
    this.sorted = undefined;
  }

  private sortedLatencies(): number[] | undefined {
    if (this.latencies.length < 8) return undefined;
    return (this.sorted ??= [...this.latencies].sort((a, b) => a - b));
  }

  private expire(now: number): void {
    const cutoff = now - this.windowMs;
    while (this.head < this.admits.length && this.admits[this.head]! <= cutoff) this.head++;
    if (this.head > 1024 && this.head * 2 > this.admits.length) {
      this.admits.splice(0, this.head);
      this.head = 0;
    }
  }

  /** A call never settled (a lost permit) stops holding capacity after ten windows. */
  private dropLost(now: number): void {
    for (const f of this.flights) if (now - f.sentAt > 10 * this.windowMs) this.flights.delete(f);
  }
}

/** Index of the first element > x in ascending `a` (from `lo`). */
function upperBound(a: number[], x: number, lo = 0): number {
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface RateLimits {
  rpm?: number;
  tpm?: number;
}

export interface RateLimiterOptions {
  /** Fraction of each limit kept free (default 0: the ServerWindow and the margin do that job). */
  headroom?: number;
  /**
   * ms added to the sends' rolling window (default 100): a server that counts at arrival sees each
   * request a little after it was sent, and not always equally late.
   */
  arrivalMarginMs?: number;
  /** The rpm ServerWindow's reserve in standard deviations (default 2); false: no ServerWindow. */
  serverWindow?: Pick<ServerWindowOptions, 'z' | 'zStep'> | false;
  /** Seconds of pacing tolerance (default 1): how far a late waiter may catch up on the even schedule. */
  burstSeconds?: number;
  clock?: Clock;
}

export interface RateReservation {
  readonly requestEntry?: Entry;
  readonly tokenEntry?: Entry;
  readonly flight?: Flight;
  readonly tokens: number;
}

interface RateWaiter {
  tokens: number;
  resolve(r: RateReservation): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** rpm and tpm for one bucket (what a provider limits together), with a FIFO queue of callers. */
export class RateLimiter {
  private requests?: WindowMeter;
  private tokenMeter?: WindowMeter;
  /** The provider's window as counted when it answers (rpm only). */
  server?: ServerWindow;
  private blockedUntil = -Infinity;
  private readonly queue: RateWaiter[] = [];
  private pumping = false;
  private wake?: AbortController;
  readonly clock: Clock;
  private readonly headroom: number;
  private readonly burstSeconds: number;
  private readonly arrivalMarginMs: number;
  private readonly serverWindow: Pick<ServerWindowOptions, 'z' | 'zStep'> | false;
  limits: RateLimits = {};
  /** Counters for stats: calls admitted, 429s seen, ms spent waiting in the queue. */
  readonly stats = { admitted: 0, rateLimited: 0, waitedMs: 0 };

  constructor(limits: RateLimits = {}, opts: RateLimiterOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.headroom = opts.headroom ?? 0;
    this.burstSeconds = opts.burstSeconds ?? 1;
    this.arrivalMarginMs = opts.arrivalMarginMs ?? 100;
    this.serverWindow = opts.serverWindow ?? {};
    this.setLimits(limits);
  }

  /** Tighten to the lower of the current and the given limits (roles sharing a bucket). */
  setLimits(limits: RateLimits): void {
    const lower = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
    const rpm = lower(this.limits.rpm, limits.rpm);
    const tpm = lower(this.limits.tpm, limits.tpm);
    if (rpm !== this.limits.rpm) {
      this.requests = rpm ? this.meter(rpm) : undefined;
      this.server =
        this.requests && this.serverWindow
          ? new ServerWindow(this.requests.capacity, this.serverWindow)
          : undefined;
    }
    if (tpm !== this.limits.tpm) this.tokenMeter = tpm ? this.meter(tpm) : undefined;
    this.limits = { rpm, tpm };
  }

  private meter(perMinute: number): WindowMeter {
    const capacity = Math.max(1, Math.floor(perMinute * (1 - this.headroom)));
    const burst = Math.max(1, Math.floor((capacity * this.burstSeconds * 1000) / WINDOW_MS));
    return new WindowMeter(capacity, burst, WINDOW_MS + this.arrivalMarginMs);
  }

  get unlimited(): boolean {
    return !this.requests && !this.tokenMeter;
  }

  /** ms until a request estimated at `tokens` may be sent (0: now). Pure apart from expiring old entries. */
  delay(tokens: number, now = this.clock.now()): number {
    const wait = Math.max(
      0,
      this.blockedUntil - now,
      this.requests?.delay(1, now) ?? 0,
      this.tokenMeter?.delay(tokens, now) ?? 0,
    );
    if (wait > 0 || !this.server || this.server.fits(now)) return wait;
    return this.server.retryIn(now);
  }

  /** Records a send now (callers check delay() first, or use acquire()). */
  take(tokens: number, now = this.clock.now()): RateReservation {
    this.stats.admitted++;
    return {
      tokens,
      requestEntry: this.requests?.take(1, now),
      tokenEntry: this.tokenMeter?.take(tokens, now),
      flight: this.server?.begin(now),
    };
  }

  /** Waits its turn (FIFO) and reserves one request and `tokens` tokens. */
  acquire(tokens: number, signal?: AbortSignal): Promise<RateReservation> {
    if (this.queue.length === 0 && this.delay(tokens) === 0) return Promise.resolve(this.take(tokens));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<RateReservation>((resolve, reject) => {
      const w: RateWaiter = { tokens, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      void this.pump();
    });
  }

  /** The real token count of a finished call (prompt + completion). */
  settle(r: RateReservation, actualTokens: number): void {
    const now = this.clock.now();
    if (r.tokenEntry && this.tokenMeter) this.tokenMeter.correct(r.tokenEntry, actualTokens, now);
    if (r.flight) this.server?.end(r.flight, now, true);
    this.poke();
  }

  /**
   * The provider said 429: nothing leaves this bucket until Retry-After has passed (GCRA pacing
   * then catches up, within its tolerance), and the ServerWindow keeps a wider reserve for a while.
   * The rejected request was not counted by the server.
   */
  rateLimited(retryAfterMs: number | undefined, r?: RateReservation): void {
    this.stats.rateLimited++;
    const now = this.clock.now();
    if (r?.flight) this.server?.end(r.flight, now, false);
    // A rejected request is not in the server's count either: its send gives its place back.
    if (r?.requestEntry && this.requests) this.requests.correct(r.requestEntry, 0, now);
    this.server?.rateLimited();
    // Back off just enough: a rolling-window server has room again as soon as its oldest count
    // leaves the window, which the ServerWindow knows, while Retry-After comes in whole seconds.
    const pause = Math.max(0, retryAfterMs ?? 1000);
    const room = this.server?.untilOldestLeaves(now);
    const until = now + (room !== undefined ? Math.min(pause, room) : pause);
    if (until > this.blockedUntil) this.blockedUntil = until;
    this.poke();
  }

  /** The call failed some other way; the server may have counted it, so the ServerWindow does. */
  release(r: RateReservation): void {
    if (r.flight) this.server?.end(r.flight, this.clock.now(), true);
    this.poke();
  }

  /** Re-evaluate the head of the queue now (a correction may have freed capacity). */
  private poke(): void {
    this.wake?.abort();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        const wait = this.delay(head.tokens);
        if (wait <= 0) {
          this.queue.shift();
          if (head.signal && head.onAbort) head.signal.removeEventListener('abort', head.onAbort);
          head.resolve(this.take(head.tokens));
          continue;
        }
        const started = this.clock.now();
        this.wake = new AbortController();
        await this.clock.sleep(wait, this.wake.signal).catch(() => undefined);
        this.wake = undefined;
        this.stats.waitedMs += this.clock.now() - started;
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** What the client gets per call: settle it exactly once. */
export interface CallPermit {
  /** The call finished with a reply: tokens = prompt + completion from usage. */
  done(actualTokens: number): void;
  /** The provider answered 429. */
  rateLimited(retryAfterMs: number | undefined): void;
  /** Any other failure (nothing learnt about the rate limit). */
  failed(): void;
  /**
   * The request timed out or the server said it was overloaded (503): nothing learnt about the
   * rate limit, but too many requests are in flight for this server (a local server that works one
   * request at a time queues the rest until they time out), so concurrency is cut as for a 429.
   */
  overloaded(): void;
}

/** The hook the LLM client calls around each HTTP request (src/llm/client.ts). */
export interface CallLimiter {
  acquire(estimatedTokens: number, signal?: AbortSignal): Promise<CallPermit>;
}

/** One role's limiter: its own adaptive concurrency in front of its (possibly shared) rate bucket. */
export class RoleLimiter implements CallLimiter {
  constructor(
    readonly concurrency: AdaptiveConcurrency,
    readonly rate: RateLimiter,
  ) {}

  async acquire(estimatedTokens: number, signal?: AbortSignal): Promise<CallPermit> {
    const slot: ConcurrencySlot = await this.concurrency.acquire(signal);
    let reservation: RateReservation;
    try {
      reservation = await this.rate.acquire(estimatedTokens, signal);
    } catch (err) {
      this.concurrency.release(slot, 'error');
      throw err;
    }
    let settled = false;
    const once = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    return {
      done: (actual) =>
        once(() => {
          this.rate.settle(reservation, actual);
          this.concurrency.release(slot, 'ok');
        }),
      rateLimited: (retryAfterMs) =>
        once(() => {
          this.rate.rateLimited(retryAfterMs, reservation);
          this.concurrency.release(slot, 'rateLimited');
        }),
      failed: () =>
        once(() => {
          this.rate.release(reservation);
          this.concurrency.release(slot, 'error');
        }),
      overloaded: () =>
        once(() => {
          this.rate.release(reservation);
          this.concurrency.release(slot, 'rateLimited');
        }),
    };
  }
}

/**
 * Which roles share one rpm/tpm bucket. "model" (default): same endpoint, API key variable and
 * model, which is how OpenAI-style providers count; "endpoint": everything behind one endpoint and
 * key (gateways, a single vLLM server, the simulator's cap); "role": every role on its own.
 */
export type LimitScope = 'model' | 'endpoint' | 'role';

export interface LimiterRegistryOptions extends RateLimiterOptions {
  scope?: LimitScope;
}

/** The limiters of one worker process, created on first use per role and bucket. */
export class LimiterRegistry {
  private readonly buckets = new Map<string, RateLimiter>();
  private readonly roles = new Map<string, RoleLimiter>();
  readonly scope: LimitScope;

  constructor(private readonly opts: LimiterRegistryOptions = {}) {
    this.scope = opts.scope ?? 'model';
  }

  bucketKey(role: RoleName, cfg: ResolvedRole): string {
    const endpoint = `${cfg.baseURL}\u0000${cfg.apiKeyEnv}`;
    if (this.scope === 'endpoint') return endpoint;
    if (this.scope === 'role') return `${endpoint}\u0000${cfg.model}\u0000${role}`;
    return `${endpoint}\u0000${cfg.model}`;
  }

  for(role: RoleName, cfg: ResolvedRole): RoleLimiter {
    const bucketKey = this.bucketKey(role, cfg);
    const roleKey = `${bucketKey}\u0000${role}\u0000${cfg.model}`;
    let limiter = this.roles.get(roleKey);
    if (limiter) return limiter;
    let bucket = this.buckets.get(bucketKey);
    if (!bucket) {
      bucket = new RateLimiter({ rpm: cfg.rpm, tpm: cfg.tpm }, this.opts);
      this.buckets.set(bucketKey, bucket);
    } else bucket.setLimits({ rpm: cfg.rpm, tpm: cfg.tpm });
    limiter = new RoleLimiter(new AdaptiveConcurrency({ max: cfg.maxConcurrency }), bucket);
    this.roles.set(roleKey, limiter);
    return limiter;
  }

  /** Per bucket: limits and counters (for the bench and logs). */
  snapshot(): {
    bucket: string;
    limits: RateLimits;
    admitted: number;
    rateLimited: number;
    waitedMs: number;
    serverWindow?: { inFlight: number; known: number; z: number };
  }[] {
    return [...this.buckets.entries()].map(([key, b]) => ({
      bucket: key.split('\u0000').filter(Boolean).join(' '),
      limits: b.limits,
      ...b.stats,
      ...(b.server
        ? {
            serverWindow: {
              inFlight: b.server.inFlight,
              known: b.server.known(b.clock.now()),
              z: Math.round(b.server.z * 100) / 100,
            },
          }
        : {}),
    }));
  }
}
