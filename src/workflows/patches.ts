/**
 * The workflow versions (Temporal patch ids) of the pipeline, in the order they were added. A
 * history recorded before a patch replays the old way; new executions take the new one. The code
 * kept only for the old ways lives in src/workflows/legacy/. Never rename an id: histories carry it.
 */

/**
 * An entry runs its instructions' steps itself instead of starting one child workflow per
 * instruction (child starts from one parent are recorded one after another, which held the last of
 * a batch back by up to 1.5 s per entry: bench/RESULTS.md), with at most MAX_PER_ENTRY instructions
 * of one entry in flight.
 */
export const INLINE_INSTRUCTIONS = 'inline-instructions';

/**
 * Once the run has kept `size` pairs it starts no new entry, instruction or decode batch (the run
 * tells its entries by the control state's `enough`; in-flight instructions finish); entries report
 * a kept pair at once so the run knows in time; `instructions` counts instructions started (decoded
 * but unstarted ones are `notStarted`, cancelled ones in flight `leftInFlight`); top-up rounds are
 * sized by topUpSize.
 */
export const STOP_WHEN_DONE = 'stop-when-done';

/**
 * A dropped instruction saves its judged iterations for viewer.html (one more file activity per
 * dropped instruction; a kept one sends them with its record).
 */
export const JUDGEMENT_RECORDS = 'judgement-records';

/**
 * With method.dedupe on or benchmark files given, the run prepares its quality index once
 * (prepareQuality, after the seeds) and each decode batch is screened by one activity
 * (screenInstructions: decontamination, exact and near duplicates; src/quality) instead of one
 * `claim` per instruction. Removed instructions count in `instructions` and per reason.
 */
export const QUALITY_SCREEN = 'quality-screen';

/**
 * A pair's calls (two answers, two judge orders) both settle before a failure of one is passed on,
 * so the usage of the one that succeeded is counted too (its calls were billed).
 */
export const SETTLE_PAIRS = 'settle-pairs';

/**
 * Batch mode's request lines live in a spool (src/batch/spool.ts), not in the batcher workflow:
 * waiters signal `batchSpooled` with references, batchSubmit assembles the file from the spool,
 * batchPoll writes each request's outcome there and returns one code per request, and a
 * continue-as-new carries no spooled outcomes. Those are new names and shapes that old histories do
 * not contain (their `batchSubmit` signals and inline lines take src/workflows/legacy/batcher.ts's
 * way); the one change of command order, a continue-as-new put off while the carry would be too
 * large (src/workflows/batcherState.ts, wantsContinueAsNew), runs behind this patch.
 */
export const BATCH_SPOOL = 'batch-spool';

/**
 * A batcher whose history is long continues-as-new with requests still gathering (carried, as
 * references, with their resubmission counts): before, it waited for none to be gathering, which a
 * paused run, or requests arriving faster than a batch is created, could put off for ever while
 * the history grew to Temporal's limit.
 */
export const CARRY_PENDING = 'batcher-carry-pending';

/**
 * A batch poll the provider refuses for good (BatchApiRejected: a revoked key, the batch gone) fails
 * that batch's requests with the reason and the batcher goes on (cancelling the batch, quietly);
 * before, the batcher workflow failed with it, and every call waiting on it waited until its
 * activity timed out (the completion window plus margin).
 */
export const POLL_REFUSED = 'batcher-poll-refused';

/**
 * A batch the batcher cancelled past its completion window and margin that has still not ended a
 * margin (at least an hour) later is given up: its requests fail with the reason. Before, the
 * batcher polled it for ever and its calls waited for ever.
 */
export const LOST_BATCH = 'batcher-lost-batch';

/**
 * A batch that fails as a whole (status failed: validation, the organisation's enqueued-token
 * limit) does not count against its requests' resubmissions: its requests go back to gathering and
 * the next flush is held for a back-off that doubles per whole-batch failure in a row (pollSeconds
 * up to maxPollSeconds; reset when a batch is accepted), or, on token_limit_exceeded while other
 * batches are open, until one of them ends. maxResubmits + 1 failures in a row fail the requests of
 * the last. Before, each whole failure counted as a resubmission of each request and the next batch
 * went out after maxWaitSeconds, so maxResubmits was used up in minutes.
 */
export const BATCH_BACKOFF = 'batcher-batch-backoff';
