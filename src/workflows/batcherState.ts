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
  proxyActivities,
  setHandler,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { BatchActivities, PollResult } from '../batch/activities';
import {
  OPEN_BATCHES_QUERY,
  OUTCOMES_QUERY,
  SUBMIT_SIGNAL,
  type BatcherCarry,
  type BatcherInput,
  type BatcherView,
  type BatchRequest,
  type OpenBatch,
  type Outcome,
  type OutcomeView,
} from '../batch/protocol';
import { DEFAULT_BATCH_SETTINGS, type BatchSettings } from '../schemas/config';
import { failureMessage } from '../util/failure';

import type { codeclmBatcher } from './batcher';

const submitSignal = defineSignal<[BatchRequest[]]>(SUBMIT_SIGNAL);
const outcomesQuery = defineQuery<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY);
const openBatchesQuery = defineQuery<BatcherView>(OPEN_BATCHES_QUERY);

const MAX_HISTORY_EVENTS = 5_000;
/** Outcomes carried over a continue-as-new: those recorded in the last hour. */
const OUTCOME_KEEP_MS = 3_600_000;

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
  private woken = false;
  private paused = false;
  /** The run this batcher serves is still running; once closed, the batcher ends. */
  runOpen = true;
  private lastRunCheck = -Infinity;

  constructor(private readonly input: BatcherInput) {
    this.settings = input.cfg.batch ?? DEFAULT_BATCH_SETTINGS;
    this.runCheckMs = this.settings.runCheckSeconds * 1000;
    const s = input.carried ?? { seq: 0, pending: [], open: [], outcomes: {}, created: 0 };
    this.s = s;
    this.known = new Set<string>([
      ...s.pending.map((r) => r.id),
      ...s.open.flatMap((b) => b.ids),
      ...Object.keys(s.outcomes),
    ]);
    this.attempts = new Map<string, number>(s.pending.map((r) => [r.id, r.attempts]));
    for (const b of s.open) for (const id of b.ids) this.attempts.set(id, this.attempts.get(id) ?? 0);
    setHandler(submitSignal, (reqs) => this.submit(reqs));
    setHandler(outcomesQuery, (ids) => this.outcomes(ids));
    setHandler(openBatchesQuery, () => this.view());
  }

  /** Asks whether the run is still open (and paused) once every `runCheckSeconds`. */
  async checkRunIfDue(): Promise<void> {
    if (Date.now() - this.lastRunCheck < this.runCheckMs) return;
    this.lastRunCheck = Date.now();
    const st = await batchRunState({ runWorkflowId: this.input.runWorkflowId });
    this.runOpen = st.open;
    this.paused = st.paused;
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

  /** Nothing gathering and the history long (or the server suggests it): time to continue-as-new. */
  wantsContinueAsNew(): boolean {
    const info = workflowInfo();
    return (
      this.s.pending.length === 0 && (info.continueAsNewSuggested || info.historyLength >= MAX_HISTORY_EVENTS)
    );
  }

  /** Continues as a new run of this batcher, carrying its state and the last hour's outcomes. */
  continueAsNew(): Promise<never> {
    const since = Date.now() - OUTCOME_KEEP_MS;
    const outcomes = Object.fromEntries(Object.entries(this.s.outcomes).filter(([, o]) => o.at >= since));
    return continueAsNew<typeof codeclmBatcher>({ ...this.input, carried: { ...this.s, outcomes } });
  }

  /** Sleeps until a poll, a flush or a run check is due, or a signal makes a flush due. */
  async sleep(): Promise<void> {
    const { s, settings } = this;
    const wakeAt = Math.min(
      ...s.open.map((b) => b.nextPollAt),
      s.pending.length && !this.paused
        ? (s.pendingSince ?? Date.now()) + settings.maxWaitSeconds * 1000
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

  private submit(reqs: BatchRequest[]): void {
    const { s } = this;
    for (const r of reqs) {
      if (this.known.has(r.id)) continue;
      this.known.add(r.id);
      this.attempts.set(r.id, 0);
      s.pending.push({ ...r, attempts: 0 });
      s.pendingSince ??= Date.now();
    }
    this.woken = true;
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
    };
  }

  private record(id: string, outcome: Outcome): void {
    if (!this.s.outcomes[id]) this.s.outcomes[id] = outcome; // exactly once per request id
  }

  private flushDue(): boolean {
    const { s, settings } = this;
    const bytes = s.pending.reduce((n, r) => n + r.line.length + 1, 0);
    return (
      s.pending.length > 0 &&
      (s.pending.length >= settings.maxRequests ||
        bytes >= settings.maxBytes ||
        Date.now() - (s.pendingSince ?? Date.now()) >= settings.maxWaitSeconds * 1000)
    );
  }

  /** The oldest requests gathering, up to the file's limits of count and bytes. */
  private take(): BatcherCarry['pending'] {
    const { s, settings } = this;
    const take: BatcherCarry['pending'] = [];
    let bytes = 0;
    while (s.pending.length && take.length < settings.maxRequests) {
      const next = s.pending[0]!;
      if (take.length && bytes + next.line.length + 1 > settings.maxBytes) break;
      take.push(s.pending.shift()!);
      bytes += next.line.length + 1;
    }
    s.pendingSince = s.pending.length ? Date.now() : undefined;
    return take;
  }

  private async flush(): Promise<void> {
    const { s, settings } = this;
    const take = this.take();
    const key = `${this.root}#${s.seq++}`;
    try {
      const sub = await batchSubmit({ cfg: this.input.cfg, key, lines: take.map((r) => r.line) });
      s.created++;
      s.open.push({
        key,
        batchId: sub.batchId,
        inputFileId: sub.inputFileId,
        ids: take.map((r) => r.id),
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
    const { cfg } = this.input;
    const r = await batchPoll({ cfg, batchId: b.batchId, inputFileId: b.inputFileId, ids: b.ids });
    b.status = r.status;
    b.counts = r.counts;
    if (r.ended) return this.settle(b, r.ended);
    b.pollMs = Math.min(b.pollMs * 2, settings.maxPollSeconds * 1000);
    b.nextPollAt = Date.now() + b.pollMs;
  }

  /** Records each request's outcome once; failed and expired lines go back to gathering (bounded). */
  private settle(b: OpenBatch, ended: NonNullable<PollResult['ended']>): void {
    const lines = new Map(ended.resubmit.map((r) => [r.id, r.line]));
    const at = Date.now();
    for (const o of ended.outcomes) {
      if (o.kind === 'ok') this.record(o.id, { state: 'done', file: ended.outputFileId ?? '', at });
      else if (o.kind === 'failed')
        this.record(o.id, { state: 'failed', reason: o.reason, status: o.status, body: o.body, at });
      else this.resubmit(o.id, o.reason, lines.get(o.id));
    }
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
