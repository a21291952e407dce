import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LimitsConfig } from '../schemas/config';
import { LlmFailure } from '../llm/types';

/**
 * Activity proxies with retry policies that fit each error class. LLM calls: transient failures
 * (429 with its Retry-After, 5xx, resets) retry with capped backoff, by default without limit so an
 * outage slows the run instead of failing it; rejected requests fail at once; invalid output
 * becomes non-retryable in the LLM boundary after a bounded number of attempts. Heartbeats let a
 * dead worker's calls move elsewhere within seconds.
 */
const permanent = [LlmFailure.Rejected, LlmFailure.ContextLength, 'InputError', 'TypeError', 'ReferenceError', 'ZodError'];

export function llmActivities(limits: LimitsConfig, taskQueue?: string) {
  return proxyActivities<Activities>({
    taskQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: `${limits.llmMaxRetryIntervalSeconds} seconds`,
      // 0 means no limit: Temporal wants the field left out for that.
      maximumAttempts: limits.llmMaxAttempts > 0 ? limits.llmMaxAttempts : undefined,
      nonRetryableErrorTypes: permanent,
    },
  });
}

export function fileActivities(taskQueue?: string) {
  return proxyActivities<Activities>({
    taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: permanent },
  });
}
