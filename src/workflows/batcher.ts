import {
  ActivityFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchActivities, PollResult } from '../batch/activities';
import {
  OPEN_BATCHES_QUERY,
  OUTCOMES_QUERY,
  SUBMIT_SIGNAL,
  type BatcherInput,
  type BatcherState,
  type BatcherView,
  type BatchRequest,
  type OpenBatch,
  type Outcome,
  type OutcomeView,
} from '../batch/protocol';
import { DEFAULT_BATCH_SETTINGS } from '../schemas/config';

/**
 * One per run and role in batch mode (issue 14): gathers the role's requests from every waiting
 * activity (signals, deduplicated by request id), writes them into batch files (flushed by count,
 * bytes or the longest wait), creates each batch exactly once (a deterministic key per batch,
 * src/batch/provider.ts), polls it on durable timers (backing off, bounded by the completion window
 * plus a margin), and records each request's outcome once. Waiting activities read outcomes with a
 * query (src/llm/batchClient.ts) and the answers from the output file: no answer passes through here.
 * Failed and expired requests go into a new batch (bounded); pause holds new batches; when the run
 * closes (cancelled, failed), open batches are cancelled at the provider and the batcher ends.
 */
export const submitSignal = defineSignal<[BatchRequest[]]>(SUBMIT_SIGNAL);
export const outcomesQuery = defineQuery<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY);
export const openBatchesQuery = defineQuery<BatcherView>(OPEN_BATCHES_QUERY);

const MAX_HISTORY_EVENTS = 5_000;
/** Outcomes carried over a continue-as-new: those recorded in the last hour. */
const OUTCOME_KEEP_MS = 3_600_000;

const { batchSubmit, batchCancel, batchRunState } = proxyActivities<BatchActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '2 minutes',
    nonRetryableErrorTypes: ['BatchApiRejected'],
  },
});
// Downloading a large output file can take a while: a longer bound, heartbeated by the worker.
const { batchPoll } = proxyActivities<BatchActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '2 minutes',
    nonRetryableErrorTypes: ['BatchApiRejected'],
  },
});

export async function codeclmBatcher(input: BatcherInput): Promise<{ created: number }> {
  const settings = input.cfg.batch ?? DEFAULT_BATCH_SETTINGS;
  const RUN_CHECK_MS = settings.runCheckSeconds * 1000;
  const s: BatcherState = input.carried ?? { seq: 0, pending: [], open: [], outcomes: {}, created: 0 };
  const known = new Set<string>([
    ...s.pending.map((r) => r.id),
    ...s.open.flatMap((b) => b.ids),
    ...Object.keys(s.outcomes),
  ]);
  const attempts = new Map<string, number>(s.pending.map((r) => [r.id, r.attempts]));
  for (const b of s.open) for (const id of b.ids) attempts.set(id, attempts.get(id) ?? 0);
  let woken = false;
  let paused = false;
  let runOpen = true;
  let lastRunCheck = -Infinity;
  const root = workflowInfo().firstExecutionRunId;

  setHandler(submitSignal, (reqs) => {
    for (const r of reqs) {
      if (known.has(r.id)) continue;
      known.add(r.id);
      attempts.set(r.id, 0);
      s.pending.push({ ...r, attempts: 0 });
      s.pendingSince ??= Date.now();
    }
    woken = true;
  });
  setHandler(outcomesQuery, (ids) => {
    const out: Record<string, OutcomeView> = {};
    for (const id of ids)
      out[id] = s.outcomes[id] ?? (known.has(id) ? { state: 'pending' } : { state: 'unknown' });
    return out;
  });
  setHandler(openBatchesQuery, () => ({
    role: input.role,
    pending: s.pending.length,
    paused,
    created: s.created,
    open: s.open.map((b) => ({
      role: input.role,
      batchId: b.batchId,
      status: b.status,
      completed: b.counts.completed,
      failed: b.counts.failed,
      total: b.counts.total,
      ageSeconds: Math.round((Date.now() - b.createdAt) / 1000),
      nextPollSeconds: Math.max(0, Math.round((b.nextPollAt - Date.now()) / 1000)),
    })),
  }));

  const record = (id: string, outcome: Outcome) => {
    if (!s.outcomes[id]) s.outcomes[id] = outcome; // exactly once per request id
  };
  const pendingBytes = () => s.pending.reduce((n, r) => n + r.line.length + 1, 0);
  const flushDue = () =>
    s.pending.length > 0 &&
    (s.pending.length >= settings.maxRequests ||
      pendingBytes() >= settings.maxBytes ||
      Date.now() - (s.pendingSince ?? Date.now()) >= settings.maxWaitSeconds * 1000);

  async function checkRun(): Promise<void> {
    lastRunCheck = Date.now();
    const st = await batchRunState({ runWorkflowId: input.runWorkflowId });
    runOpen = st.open;
    paused = st.paused;
  }

  async function flush(): Promise<void> {
    const take: typeof s.pending = [];
    let bytes = 0;
    while (s.pending.length && take.length < settings.maxRequests) {
      const next = s.pending[0]!;
      if (take.length && bytes + next.line.length + 1 > settings.maxBytes) break;
      take.push(s.pending.shift()!);
      bytes += next.line.length + 1;
    }
    s.pendingSince = s.pending.length ? Date.now() : undefined;
    const key = `${root}#${s.seq++}`;
    try {
      const sub = await batchSubmit({ cfg: input.cfg, key, lines: take.map((r) => r.line) });
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
      for (const r of take) record(r.id, { state: 'failed', reason, at: Date.now() });
    }
  }

  function settle(b: OpenBatch, ended: NonNullable<PollResult['ended']>): void {
    const lines = new Map(ended.resubmit.map((r) => [r.id, r.line]));
    for (const o of ended.outcomes) {
      if (o.kind === 'ok') record(o.id, { state: 'done', file: ended.outputFileId ?? '', at: Date.now() });
      else if (o.kind === 'failed')
        record(o.id, { state: 'failed', reason: o.reason, status: o.status, body: o.body, at: Date.now() });
      else {
        const n = (attempts.get(o.id) ?? 0) + 1;
        const line = lines.get(o.id);
        if (n > settings.maxResubmits || line === undefined) {
          record(o.id, {
            state: 'failed',
            reason: `${o.reason} (in ${n} batch(es); ${settings.maxResubmits} resubmission(s) allowed)`,
            at: Date.now(),
          });
        } else {
          attempts.set(o.id, n);
          s.pending.push({ id: o.id, line, attempts: n });
          s.pendingSince ??= Date.now();
        }
      }
    }
    s.open = s.open.filter((x) => x !== b);
  }

  async function poll(b: OpenBatch): Promise<void> {
    const deadline = b.createdAt + (24 + settings.marginHours) * 3_600_000;
    if (Date.now() > deadline && !b.cancelling) {
      // Past the completion window and margin: give it up; its requests go into a new batch.
      b.cancelling = true;
      await cancelQuietly(b);
    }
    const r = await batchPoll({ cfg: input.cfg, batchId: b.batchId, inputFileId: b.inputFileId, ids: b.ids });
    b.status = r.status;
    b.counts = r.counts;
    if (r.ended) return settle(b, r.ended);
    b.pollMs = Math.min(b.pollMs * 2, settings.maxPollSeconds * 1000);
    b.nextPollAt = Date.now() + b.pollMs;
  }

  async function cancelQuietly(b: OpenBatch): Promise<void> {
    try {
      await batchCancel({ cfg: input.cfg, batchId: b.batchId });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Already ended, or refused: polling shows what became of it.
    }
  }

  async function closeWithRun(): Promise<{ created: number }> {
    // The run ended without these answers (cancelled, failed, terminated): stop paying for them.
    await CancellationScope.nonCancellable(async () => {
      for (const b of s.open) await cancelQuietly(b);
    });
    return { created: s.created };
  }

  for (;;) {
    if (Date.now() - lastRunCheck >= RUN_CHECK_MS) await checkRun();
    if (!runOpen) return closeWithRun();
    if (!paused && flushDue()) {
      await flush();
      continue;
    }
    const due = s.open.filter((b) => b.nextPollAt <= Date.now());
    for (const b of due) await poll(b);
    if (due.length) continue;

    const info = workflowInfo();
    if (s.pending.length === 0 && (info.continueAsNewSuggested || info.historyLength >= MAX_HISTORY_EVENTS)) {
      const since = Date.now() - OUTCOME_KEEP_MS;
      const outcomes = Object.fromEntries(Object.entries(s.outcomes).filter(([, o]) => o.at >= since));
      return continueAsNew<typeof codeclmBatcher>({ ...input, carried: { ...s, outcomes } });
    }

    const wakeAt = Math.min(
      ...s.open.map((b) => b.nextPollAt),
      s.pending.length && !paused
        ? (s.pendingSince ?? Date.now()) + settings.maxWaitSeconds * 1000
        : Infinity,
      lastRunCheck + RUN_CHECK_MS,
    );
    woken = false;
    await condition(() => woken && flushDue(), Math.max(1, wakeAt - Date.now()));
  }
}

function failureMessage(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; e instanceof ActivityFailure && e.cause && depth < 5; depth++) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}
