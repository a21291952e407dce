import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../src/activities';
import type { JudgeInput } from '../../src/activities/stages';
import { LlmFailure } from '../../src/llm/types';

/**
 * Test workflow: one real `judge` activity call under a fast retry policy (so the test can tell a
 * server-dictated Retry-After from the policy's own 100 ms backoff), reporting the outcome as data.
 */
const { judge } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '100 milliseconds',
    backoffCoefficient: 1,
    maximumAttempts: 6,
    nonRetryableErrorTypes: [LlmFailure.Rejected, LlmFailure.ContextLength],
  },
});

export type LlmCallOutcome =
  | { ok: true; scoreA: number; scoreB: number }
  | { ok: false; type?: string; message: string; nonRetryable?: boolean };

export async function llmCallWorkflow(input: JudgeInput): Promise<LlmCallOutcome> {
  try {
    const { scores } = await judge(input);
    return { ok: true, scoreA: scores.score_a, scoreB: scores.score_b };
  } catch (err) {
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
      return {
        ok: false,
        type: err.cause.type ?? undefined,
        message: err.cause.message,
        nonRetryable: err.cause.nonRetryable ?? undefined,
      };
    }
    throw err;
  }
}
