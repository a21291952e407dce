import { ActivityFailure, ChildWorkflowFailure, isCancellation } from '@temporalio/workflow';

/**
 * An activity or child that failed for good fails its item, and the run goes on. Anything else
 * (a cancellation, or a bug in workflow code) propagates: a bug must fail the workflow task loudly
 * so it can be fixed and replayed, not be filed as a failed item. (The reason shown for a failed
 * item is `failureMessage` of src/util/failure.ts, the one walk of a failure's cause chain.)
 */
export function isItemFailure(err: unknown): boolean {
  return (err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) && !isCancellation(err);
}
