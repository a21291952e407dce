import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';

/**
 * Reading Temporal failures. An ActivityFailure or ChildWorkflowFailure only says "activity task
 * failed"; the useful text is on its cause chain. Workflow-safe (no Node built-ins): workflows, the
 * CLI and reports all read failures through these two functions.
 */

/** The innermost cause of a failure chain (the error itself when it has no cause). */
export function rootCause(err: unknown): unknown {
  let e = err;
  // Bounded: a malformed chain (a cause pointing back at itself) must not hang a workflow task.
  for (let depth = 0; depth < 32; depth++) {
    const cause = (e as { cause?: unknown } | undefined)?.cause;
    if (!cause || cause === e) break;
    e = cause;
  }
  return e;
}

/**
 * One line for a report or a terminal: the root cause's message, prefixed by its failure type when
 * it is an ApplicationFailure (e.g. "LlmRejected: LLM request rejected (HTTP 400) ...").
 */
export function failureMessage(err: unknown): string {
  const root = rootCause(err);
  if (root instanceof ActivityFailure || root instanceof ChildWorkflowFailure) return root.message;
  const type = root instanceof ApplicationFailure && root.type ? `${root.type}: ` : '';
  const message = (root as Error | undefined)?.message;
  return `${type}${message ?? String(root)}`;
}
