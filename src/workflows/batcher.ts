/**
 * One per run and role in batch mode (issue 14): gathers the role's requests from every waiting
 * activity (signals, deduplicated by request id), writes them into batch files (flushed by count,
 * bytes or the longest wait), creates each batch exactly once (a deterministic key per batch,
 * src/batch/provider.ts), polls it on durable timers (backing off, bounded by the completion window
 * plus a margin), and records each request's outcome once. Waiting activities read outcomes with a
 * query (src/llm/batchClient.ts) and the answers from the output file: no answer passes through here.
 * Failed and expired requests go into a new batch (bounded); pause holds new batches; when the run
 * closes (cancelled, failed), open batches are cancelled at the provider and the batcher ends.
 *
 * The state, its handlers and each step are in src/workflows/batcherState.ts; this is the order of
 * the steps (which the recorded histories in test/histories/ pin down).
 */
import type { BatcherInput } from '../batch/protocol';
import { BatcherState } from './batcherState';

export async function codeclmBatcher(input: BatcherInput): Promise<{ created: number }> {
  const batcher = new BatcherState(input);
  for (;;) {
    await batcher.checkRunIfDue();
    if (!batcher.runOpen) return batcher.closeWithRun();
    if (await batcher.flushIfDue()) continue;
    if (await batcher.pollDue()) continue;
    if (batcher.wantsContinueAsNew()) return batcher.continueAsNew();
    await batcher.sleep();
  }
}
