/**
 * LEGACY (see ./index.ts): the batcher's handling of request lines carried inline, from before the
 * batch spool (src/batch/spool.ts, patch id `batch-spool` in ../patches.ts). Waiters of earlier
 * versions signalled `batchSubmit` with each request's JSONL line; the batcher kept the lines in
 * its state and carry, sent them in `batchSubmit`'s input (so a file stayed under 1.5 MB), and
 * `batchPoll` returned one outcome per request and the lines to resubmit; outcomes were held only
 * by the batcher (the last hour's carried over a continue-as-new). Runs in flight across the
 * upgrade, and every history recorded before it (test/histories/batch-mode/), still take this way.
 *
 * When to delete: with the rest of ./index.ts's rule, once no batcher started before `batch-spool`
 * can still be running or replayed (its run closed and the retention period passed): then delete
 * this file, the `batchSubmit` signal handler and the branches marked "Legacy" in
 * src/workflows/batcherState.ts, `lines`/`ids` in src/batch/activities.ts's inputs and the legacy
 * branch of batchPoll, and test/histories/batch-mode/.
 */
import type { PollResult } from '../../batch/activities';
import type { BatchRequest, Outcome, PendingRequest } from '../../batch/protocol';

/** Inline lines travel in one activity input: a batch holds at most this many bytes of them. */
export const INLINE_MAX_BYTES = 1_500_000;
/** Inline outcomes (no copy in a spool) carried over a continue-as-new: those of the last hour. */
const INLINE_OUTCOME_KEEP_MS = 3_600_000;

/** A request sent with its line inline (the `batchSubmit` signal). */
export function inlinePending(r: BatchRequest): PendingRequest {
  return { id: r.id, line: r.line, attempts: 0 };
}

/** The outcomes a continue-as-new must carry: inline ones of the last hour (spooled ones are in the spool). */
export function carriedOutcomes(outcomes: Record<string, Outcome>, now: number): Record<string, Outcome> {
  return Object.fromEntries(
    Object.entries(outcomes).filter(([, o]) => o.state !== 'stored' && o.at >= now - INLINE_OUTCOME_KEEP_MS),
  );
}

/** What a legacy poll of an ended batch says about each request (outcomes and lines to resubmit). */
export function inlineSettlement(
  ended: NonNullable<PollResult['ended']>,
  at: number,
): {
  outcomes: [string, Outcome][];
  again: { id: string; reason: string; line: string | undefined }[];
} {
  const lines = new Map((ended.resubmit ?? []).map((r) => [r.id, r.line]));
  const outcomes: [string, Outcome][] = [];
  const again: { id: string; reason: string; line: string | undefined }[] = [];
  for (const o of ended.outcomes ?? []) {
    if (o.kind === 'ok') outcomes.push([o.id, { state: 'done', file: ended.outputFileId ?? '', at }]);
    else if (o.kind === 'failed')
      outcomes.push([o.id, { state: 'failed', reason: o.reason, status: o.status, body: o.body, at }]);
    else again.push({ id: o.id, reason: o.reason, line: lines.get(o.id) });
  }
  return { outcomes, again };
}
