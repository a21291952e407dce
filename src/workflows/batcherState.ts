/**
 * The state and steps of one batcher workflow (src/workflows/batcher.ts), in the style of Temporal's
 * safe-message-handlers sample: the requests gathering, the open batches and the outcomes, the
 * handlers that feed and read them (`batchSubmit`, `batchOutcomes`, `openBatches`), and the steps
 * the workflow's loop takes: check the run, flush, poll, settle, sleep, continue-as-new, close.
 */
import {
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { BatchActivities, PollResult } from '../batch/activities';
import {
  CODE,
  OPEN_BATCHES_QUERY,
  OUTCOMES_QUERY,
  SPOOL_SIGNAL,
  SUBMIT_SIGNAL,
  type BatcherCarry,
  type BatcherInput,
  type BatcherView,
  type BatchRequest,
  type OpenBatch,
  type Outcome,
  type OutcomeView,
  type PartSelection,
  type PendingRequest,
  type SpooledRequests,
} from '../batch/protocol';
import { DEFAULT_BATCH_SETTINGS, type BatchSettings } from '../schemas/config';
import { failureMessage } from '../util/failure';

import type { codeclmBatcher } from './batcher';
import { carriedOutcomes, INLINE_MAX_BYTES, inlinePending, inlineSettlement } from './legacy/batcher';
import { BATCH_BACKOFF, BATCH_SPOOL, CARRY_PENDING, LOST_BATCH, POLL_REFUSED } from './patches';

/** Legacy (src/workflows/legacy/batcher.ts): requests with their lines inline. */
const submitSignal = defineSignal<[BatchRequest[]]>(SUBMIT_SIGNAL);
const spooledSignal = defineSignal<[SpooledRequests]>(SPOOL_SIGNAL);
const outcomesQuery = defineQuery<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY);
const openBatchesQuery = defineQuery<BatcherView>(OPEN_BATCHES_QUERY);

const MAX_HISTORY_EVENTS = 5_000;
/**
 * A continue-as-new carries the requests gathering and the ids of the open batches (about 50 bytes
 * each): past this estimate it waits for batches to end (the input must stay under 2 MB).
 */
const MAX_CARRY_BYTES = 1_500_000;

/** A batch in one of these states was accepted by the provider: whole-batch failures in a row end. */
const ACCEPTED = new Set(['in_progress', 'finalizing', 'completed', 'expired']);
/** The provider's code for a batch refused while the organisation's enqueued tokens are at their limit. */
const TOKEN_LIMIT = 'token_limit_exceeded';

const retry: RetryPolicy = {
  initialInterval: '2 seconds',
  maximumInterval: '2 minutes',
  nonRetryableErrorTypes: ['BatchApiRejected'],
};
const { batchSubmit, batchCancel, batchRunState } = proxyActivities<BatchActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry,
});
// Downloading a large output file can take a while: a longer bound, heartbeated by the worker.
const { batchPoll } = proxyActivities<BatchActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry,
});

export class BatcherState {
  private readonly settings: BatchSettings;
  private readonly runCheckMs: number;
  /** What a continue-as-new carries: the requests gathering, the open batches, the outcomes. */
  private readonly s: BatcherCarry;
  /** Every request id this batcher has taken (gathering, in a batch, or with an outcome). */
  private readonly known: Set<string>;
  /** Batches each request has been in before its current one. */
  private readonly attempts: Map<string, number>;
  /** The key of each batch starts with the first run's id: the same after a continue-as-new. */
  private readonly root = workflowInfo().firstExecutionRunId;
  private readonly maxHistoryEvents: number;
  private woken = false;
  private paused = false;
  /** The run this batcher serves is still running; once closed, the batcher ends. */
  runOpen = true;
  private lastRunCheck = -Infinity;

  constructor(private readonly input: BatcherInput) {
    this.settings = input.cfg.batch ?? DEFAULT_BATCH_SETTINGS;
    this.runCheckMs = this.settings.runCheckSeconds * 1000;
    const s = input.carried ?? { seq: 0, pending: [], open: [], outcomes: {}, created: 0 };
    this.maxHistoryEvents = input.tuning?.maxHistoryEvents ?? MAX_HISTORY_EVENTS;
    this.s = s;
    this.known = new Set<string>([
      ...s.pending.map((r) => r.id),
      ...s.open.flatMap((b) => b.ids),
      ...Object.keys(s.outcomes),
    ]);
    this.attempts = new Map<string, number>(s.pending.map((r) => [r.id, r.attempts]));
    for (const b of s.open) {
      b.ids.forEach((id, i) => this.attempts.set(id, parseInt(b.attempts?.[i] ?? '0', 36)));
      delete b.attempts; // Kept in `attempts` while this generation runs.
    }
    setHandler(submitSignal, (reqs) => this.submit(reqs.map(inlinePending)));
    setHandler(spooledSignal, (msg) => this.spooled(msg));
    setHandler(outcomesQuery, (ids) => this.outcomes(ids));
    setHandler(openBatchesQuery, () => this.view());
  }

  /** Asks whether the run is still open (and paused) once every `runCheckSeconds`. */
  async checkRunIfDue(): Promise<void> {
    if (Date.now() - this.lastRunCheck < this.runCheckMs) return;
    this.lastRunCheck = Date.now();
    const st = await batchRunState({ runWorkflowId: this.input.runWorkflowId });
    this.runOpen = st.open;
    this.paused = st.paused ?? this.paused; // unknown (the query failed): as it was
  }

  /** Writes the next batch when one is due (by count, bytes or wait) and the run is not paused. */
  async flushIfDue(): Promise<boolean> {
    if (this.paused || !this.flushDue()) return false;
    await this.flush();
    return true;
  }

  /** Polls the open batches whose next poll is due; false when none was. */
  async pollDue(): Promise<boolean> {
    const due = this.s.open.filter((b) => b.nextPollAt <= Date.now());
    for (const b of due) await this.poll(b);
    return due.length > 0;
  }

  /** The history long (or the server suggests it): time to continue-as-new, carrying what is open. */
  wantsContinueAsNew(): boolean {
    const info = workflowInfo();
    const long = info.continueAsNewSuggested || info.historyLength >= this.maxHistoryEvents;
    const due = this.s.pending.length === 0 && long;
    // Too much to carry (large open batches): wait for some to end. (A new command order, hence
    // the patch: histories from before it continued-as-new here whatever they carried.)
    if (due && this.carryBytes() > MAX_CARRY_BYTES && patched(BATCH_SPOOL)) return false;
    // Requests gathering (a paused run, or requests arriving while each batch is created) are
    // carried too: waiting for none could put the continue-as-new off for ever.
    if (!due && long && this.carryBytes() <= MAX_CARRY_BYTES && patched(CARRY_PENDING)) return true;
    return due;
  }

  /**
   * Continues as a new run of this batcher, carrying the requests gathering and the open batches.
   * Outcomes in the spool are dropped (a request asked for later finds its outcome there); legacy
   * inline ones are carried for an hour.
   */
  continueAsNew(): Promise<never> {
    const outcomes = carriedOutcomes(this.s.outcomes, Date.now());
    const open = this.s.open.map((b) => ({ ...b, attempts: this.attemptDigits(b) }));
    return continueAsNew<typeof codeclmBatcher>({
      ...this.input,
      carried: { ...this.s, open, outcomes },
    });
  }

  private carryBytes(): number {
    const { s } = this;
    const inline = s.pending.reduce((n, r) => n + ('line' in r ? r.line.length : 100), 0);
    return inline + s.open.reduce((n, b) => n + b.ids.length * 51, 0) + Object.keys(s.outcomes).length * 100;
  }

  /** Sleeps until a poll, a flush or a run check is due, or a signal makes a flush due. */
  async sleep(): Promise<void> {
    const { s, settings } = this;
    const wakeAt = Math.min(
      ...s.open.map((b) => b.nextPollAt),
      s.pending.length && !this.paused
        ? Math.max((s.pendingSince ?? Date.now()) + settings.maxWaitSeconds * 1000, this.heldUntil())
        : Infinity,
      this.lastRunCheck + this.runCheckMs,
    );
    this.woken = false;
    await condition(() => this.woken && this.flushDue(), Math.max(1, wakeAt - Date.now()));
  }

  /** The run ended without these answers (cancelled, failed, terminated): stop paying for them. */
  async closeWithRun(): Promise<{ created: number }> {
    await CancellationScope.nonCancellable(async () => {
      for (const b of this.s.open) await this.cancelQuietly(b);
    });
    return { created: this.s.created };
  }

  private submit(reqs: PendingRequest[]): void {
    const { s } = this;
    for (const r of reqs) {
      if (this.known.has(r.id)) continue;
      this.known.add(r.id);
      this.attempts.set(r.id, 0);
      s.pending.push(r);
      s.pendingSince ??= Date.now();
    }
    this.woken = true;
  }

  private spooled(msg: SpooledRequests): void {
    this.s.spool ??= msg.spool;
    const { part, bytes } = msg;
    this.submit(msg.ids.map((id, index) => ({ id, part, index, bytes: bytes[index]!, attempts: 0 })));
  }

  private outcomes(ids: string[]): Record<string, OutcomeView> {
    const out: Record<string, OutcomeView> = {};
    for (const id of ids)
      out[id] = this.s.outcomes[id] ?? (this.known.has(id) ? { state: 'pending' } : { state: 'unknown' });
    return out;
  }

  private view(): BatcherView {
    const { role } = this.input;
    return {
      role,
      pending: this.s.pending.length,
      paused: this.paused,
      created: this.s.created,
      open: this.s.open.map((b) => ({
        role,
        batchId: b.batchId,
        status: b.status,
        completed: b.counts.completed,
        failed: b.counts.failed,
        total: b.counts.total,
        ageSeconds: Math.round((Date.now() - b.createdAt) / 1000),
        nextPollSeconds: Math.max(0, Math.round((b.nextPollAt - Date.now()) / 1000)),
      })),
      ...this.heldView(),
    };
  }

  private heldView(): Pick<BatcherView, 'held'> {
    const until = this.heldUntil();
    if (!this.s.hold || until <= Date.now()) return {};
    const { failures } = this.s.hold;
    if (until === Infinity) return { held: { failures, untilABatchEnds: true } };
    return { held: { failures, seconds: Math.ceil((until - Date.now()) / 1000) } };
  }

  private record(id: string, outcome: Outcome): void {
    if (!this.s.outcomes[id]) this.s.outcomes[id] = outcome; // exactly once per request id
  }

  private flushDue(): boolean {
    const { s, settings } = this;
    let bytes = 0;
    let inline = 0;
    for (const r of s.pending) {
      bytes += size(r);
      if ('line' in r) inline += size(r);
    }
    return (
      s.pending.length > 0 &&
      this.heldUntil() <= Date.now() &&
      (s.pending.length >= settings.maxRequests ||
        bytes >= settings.maxBytes ||
        inline >= INLINE_MAX_BYTES ||
        Date.now() - (s.pendingSince ?? Date.now()) >= settings.maxWaitSeconds * 1000)
    );
  }

  /**
   * When the next flush may go out after batches failed as a whole: 0 when not held, Infinity
   * while waiting for one of the batches `waitFor` to end (a poll that settles it wakes the loop).
   */
  private heldUntil(): number {
    const { hold, open } = this.s;
    if (!hold) return 0;
    if (hold.waitFor) return hold.waitFor.every((k) => open.some((b) => b.key === k)) ? Infinity : 0;
    return hold.until ?? 0;
  }

  /** The oldest requests gathering, up to the file's limits of count and bytes. */
  private take(): PendingRequest[] {
    const { s, settings } = this;
    const take: PendingRequest[] = [];
    let bytes = 0;
    let inline = 0;
    while (s.pending.length && take.length < settings.maxRequests) {
      const next = s.pending[0]!;
      const n = size(next);
      if (take.length && bytes + n > settings.maxBytes) break;
      // Legacy: inline lines travel in the activity's input.
      if (take.length && 'line' in next && inline + n > INLINE_MAX_BYTES) break;
      take.push(s.pending.shift()!);
      bytes += n;
      if ('line' in next) inline += n;
    }
    s.pendingSince = s.pending.length ? Date.now() : undefined;
    return take;
  }

  private async flush(): Promise<void> {
    const { s, settings } = this;
    const take = this.take();
    const key = `${this.root}#${s.seq++}`;
    const { spool } = s;
    const inline = take.filter((r) => 'line' in r);
    // The file's order: inline lines, then each part's selected lines (src/batch/spool.ts).
    const { parts, ids } = selection(take);
    try {
      const sub = await batchSubmit(
        spool === undefined
          ? { cfg: this.input.cfg, key, lines: inline.map((r) => r.line) } // Legacy: all inline
          : { cfg: this.input.cfg, key, spool, lines: inline.map((r) => r.line), parts },
      );
      s.created++;
      s.open.push({
        key,
        batchId: sub.batchId,
        inputFileId: sub.inputFileId,
        ids: spool === undefined ? inline.map((r) => r.id) : [...inline.map((r) => r.id), ...ids],
        spool,
        createdAt: Date.now(),
        nextPollAt: Date.now() + settings.pollSeconds * 1000,
        pollMs: settings.pollSeconds * 1000,
        status: 'validating',
        counts: { total: take.length, completed: 0, failed: 0 },
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // The provider refuses the batch itself (no Batch API there, a bad key): its requests fail.
      const reason = failureMessage(err);
      for (const r of take) this.record(r.id, { state: 'failed', reason, at: Date.now() });
    }
  }

  private async poll(b: OpenBatch): Promise<void> {
    const { settings } = this;
    const deadline = b.createdAt + (24 + settings.marginHours) * 3_600_000;
    if (Date.now() > deadline && !b.cancelling) {
      // Past the completion window and margin: give it up; its requests go into a new batch.
      b.cancelling = true;
      await this.cancelQuietly(b);
    }
    // Cancelled, and still not ended a margin (at least an hour) later: the provider has lost it.
    // Its requests fail with the reason rather than wait on it for ever.
    const lostAt = deadline + Math.max(settings.marginHours, 1) * 3_600_000;
    if (b.cancelling && Date.now() > lostAt && patched(LOST_BATCH)) {
      const hours = Math.round((Date.now() - b.createdAt) / 3_600_000);
      const reason =
        `batch ${b.batchId} did not end at the provider in ${hours} h, nor when cancelled ` +
        `(last status ${b.status})`;
      for (const id of b.ids) this.record(id, { state: 'failed', reason, at: Date.now() });
      this.s.open = this.s.open.filter((x) => x !== b);
      return;
    }
    const { cfg } = this.input;
    const { batchId, inputFileId } = b;
    // Whole-batch failures bounded here, not as resubmissions (histories from before: counted).
    const backoff = b.spool !== undefined && patched(BATCH_BACKOFF);
    const r = await this.pollOrGiveUp(b, () =>
      batchPoll(
        b.spool === undefined
          ? { cfg, batchId, inputFileId, ids: b.ids } // Legacy: a batch of inline lines
          : {
              cfg,
              batchId,
              inputFileId,
              spool: b.spool,
              key: b.key,
              attempts: this.attemptDigits(b),
              ...(b.cancelling ? { givenUp: true } : {}),
              ...(backoff ? { wholeFailureUncounted: true } : {}),
            },
      ),
    );
    if (!r) return;
    // Accepted (in progress or later) after a whole-batch failure: the provider takes batches again.
    if (backoff && this.s.hold && b.status === 'validating' && ACCEPTED.has(r.status))
      this.s.hold.failures = 0;
    b.status = r.status;
    b.counts = r.counts;
    if (r.ended) {
      if (b.spool === undefined) return this.settleInline(b, r.ended);
      return this.settle(b, r.ended, backoff && r.status === 'failed');
    }
    b.pollMs = Math.min(b.pollMs * 2, settings.maxPollSeconds * 1000);
    b.nextPollAt = Date.now() + b.pollMs;
  }

  /**
   * The poll's result; undefined when the provider refused it for good (only such failures reach
   * here: the rest are retried): the batch's requests fail with the reason, the batch is closed
   * here and cancelled at the provider (quietly), so the batcher and its other requests go on.
   */
  private async pollOrGiveUp(b: OpenBatch, poll: () => Promise<PollResult>): Promise<PollResult | undefined> {
    try {
      return await poll();
    } catch (err) {
      if (isCancellation(err) || !patched(POLL_REFUSED)) throw err;
      const reason = `batch ${b.batchId} could not be polled: ${failureMessage(err)}`;
      for (const id of b.ids) this.record(id, { state: 'failed', reason, at: Date.now() });
      this.s.open = this.s.open.filter((x) => x !== b);
      await this.cancelQuietly(b);
      return undefined;
    }
  }

  /** Each request's batches before this one, one base-36 digit per request (maxResubmits <= 10). */
  private attemptDigits(b: OpenBatch): string {
    return b.ids.map((id) => (this.attempts.get(id) ?? 0).toString(36)).join('');
  }

  /**
   * A spooled batch ended: its outcomes are in the spool (recorded here as `stored`), and the
   * requests worth another batch are in a new part of the spool, in order: back to gathering.
   */
  private settle(b: OpenBatch, ended: NonNullable<PollResult['ended']>, wholeFailure = false): void {
    const { s } = this;
    const at = Date.now();
    const codes = ended.codes ?? '';
    s.open = s.open.filter((x) => x !== b);
    // Failed as a whole: not counted per request; the flush is held, or the bound reached.
    const failedFor = wholeFailure ? this.holdAfterWholeFailure(ended) : undefined;
    let k = 0;
    b.ids.forEach((id, i) => {
      if (codes[i] !== CODE.retry) return this.record(id, { state: 'stored', at });
      const bytes = ended.retry!.bytes[k]!;
      const index = k++;
      // (Its line, copied to the retry part, is left unread there.)
      if (failedFor) return this.record(id, { state: 'failed', reason: failedFor, at });
      const n = (this.attempts.get(id) ?? 0) + (wholeFailure ? 0 : 1);
      this.attempts.set(id, n);
      s.pending.push({ id, part: ended.retry!.part, index, bytes, attempts: n });
      s.pendingSince ??= Date.now();
    });
  }

  /**
   * Holds the next flush after a batch failed as a whole; the reason its requests fail with when
   * this is the maxResubmits + 1st such failure in a row. The enqueued-token limit with other
   * batches open is waited out (until one of them ends) and not counted: it frees up as they end.
   */
  private holdAfterWholeFailure(ended: NonNullable<PollResult['ended']>): string | undefined {
    const { s, settings } = this;
    const failures = s.hold?.failures ?? 0;
    if (ended.failure?.codes.includes(TOKEN_LIMIT) && s.open.length) {
      s.hold = { failures, waitFor: s.open.map((x) => x.key) };
      return undefined;
    }
    const n = failures + 1;
    const ms = Math.min(settings.pollSeconds * 1000 * 2 ** (n - 1), settings.maxPollSeconds * 1000);
    if (n <= settings.maxResubmits) {
      s.hold = { failures: n, until: Date.now() + ms };
      return undefined;
    }
    s.hold = { failures: 0, until: Date.now() + ms }; // the next requests get their own tries
    const reason = ended.failure?.reason ?? 'batch failed';
    return `${reason} (${n} batch(es) in a row failed whole; ${settings.maxResubmits} resubmission(s) allowed)`;
  }

  /** Legacy: records each request's outcome once; failed and expired lines go back to gathering (bounded). */
  private settleInline(b: OpenBatch, ended: NonNullable<PollResult['ended']>): void {
    const { outcomes, again } = inlineSettlement(ended, Date.now());
    for (const [id, o] of outcomes) this.record(id, o);
    for (const r of again) this.resubmit(r.id, r.reason, r.line);
    this.s.open = this.s.open.filter((x) => x !== b);
  }

  private resubmit(id: string, reason: string, line: string | undefined): void {
    const { s, settings } = this;
    const n = (this.attempts.get(id) ?? 0) + 1;
    if (n > settings.maxResubmits || line === undefined) {
      const allowed = `${settings.maxResubmits} resubmission(s) allowed`;
      this.record(id, {
        state: 'failed',
        reason: `${reason} (in ${n} batch(es); ${allowed})`,
        at: Date.now(),
      });
      return;
    }
    this.attempts.set(id, n);
    s.pending.push({ id, line, attempts: n });
    s.pendingSince ??= Date.now();
  }

  private async cancelQuietly(b: OpenBatch): Promise<void> {
    try {
      await batchCancel({ cfg: this.input.cfg, batchId: b.batchId });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Already ended, or refused: polling shows what became of it.
    }
  }
}

/** Bytes of a request's line in a batch file (with its newline). */
function size(r: PendingRequest): number {
  return 'line' in r ? r.line.length + 1 : r.bytes;
}

/**
 * The spooled requests of a batch as part selections (half-open index ranges), and their ids in
 * the order the file will hold them: parts in order of first appearance, lines in part order.
 */
function selection(take: PendingRequest[]): { parts: PartSelection[]; ids: string[] } {
  const byPart = new Map<string, { index: number; id: string }[]>();
  for (const r of take) {
    if ('line' in r) continue;
    let list = byPart.get(r.part);
    if (!list) byPart.set(r.part, (list = []));
    list.push({ index: r.index, id: r.id });
  }
  const parts: PartSelection[] = [];
  const ids: string[] = [];
  for (const [part, list] of byPart) {
    list.sort((a, b) => a.index - b.index);
    const ranges: [number, number][] = [];
    for (const { index, id } of list) {
      const last = ranges[ranges.length - 1];
      if (last && last[1] === index) last[1] = index + 1;
      else ranges.push([index, index + 1]);
      ids.push(id);
    }
    parts.push({ part, ranges });
  }
  return { parts, ids };
}
