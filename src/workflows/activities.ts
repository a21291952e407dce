import { proxyActivities, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LimitsConfig } from '../schemas/config';
import { roleQueue } from './queues';
import { LlmFailure } from '../llm/types';

/**
 * Activity proxies with retry policies that fit each error class. LLM calls: transient failures
 * (429 with its Retry-After, 5xx, resets) retry with capped backoff, by default without limit so an
 * outage slows the run instead of failing it; rejected requests fail at once; invalid output
 * becomes non-retryable in the LLM boundary after a bounded number of attempts. Heartbeats (every
 * 2 s, by the worker's one heartbeat interceptor: src/activities/attemptUsage.ts) against a 10 s
 * heartbeat timeout let a killed worker's calls move to another worker within seconds.
 *
 * Task queues: workflows and file activities run on the run's queue; LLM calls go to one queue per
 * role (`<queue>-llm-strong`, `-target`, `-judge`), so that Temporal's task-queue rate limit
 * (`maxTaskQueueActivitiesPerSecond`, set by every worker from the role's rpm) caps the requests
 * per minute of a role for the whole cluster, whatever the number of workers (src/worker.ts).
 */
const permanent = [
  LlmFailure.Rejected,
  LlmFailure.ContextLength,
  'InputError',
  'TypeError',
  'ReferenceError',
  'ZodError',
];

export { roleQueue };

const LLM_HEARTBEAT_TIMEOUT = '10 seconds';

function llmProxy(limits: LimitsConfig, taskQueue: string) {
  return proxyActivities<Activities>({
    taskQueue,
    // A batch-mode call waits for its batch (src/batch): the config then sets a longer bound.
    startToCloseTimeout: `${limits.llmActivityTimeoutMinutes ?? 10} minutes`,
    heartbeatTimeout: LLM_HEARTBEAT_TIMEOUT,
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

/**
 * The LLM activities, each routed to its role's queue. `answer` serves two roles (strong and
 * target, by its `who` field), so it picks the queue per call.
 */
export function llmActivities(limits: LimitsConfig, taskQueue?: string) {
  const queue = taskQueue ?? workflowInfo().taskQueue;
  const strong = llmProxy(limits, roleQueue(queue, 'strong'));
  const target = llmProxy(limits, roleQueue(queue, 'target'));
  const judge = llmProxy(limits, roleQueue(queue, 'judge'));
  // Every LLM activity bounds its output by limits.maxOutputChars; it is added here, once.
  const bounded =
    <I extends { maxOutputChars?: number }, O>(call: (input: I) => Promise<O>) =>
    (input: I) =>
      call({ ...input, maxOutputChars: input.maxOutputChars ?? limits.maxOutputChars });
  return {
    encodeSeed: bounded(strong.encodeSeed),
    decodeInstructions: bounded(strong.decodeInstructions),
    writeRubrics: bounded(strong.writeRubrics),
    improveInstruction: bounded(strong.improveInstruction),
    answer: bounded((input: Parameters<Activities['answer']>[0]) =>
      (input.who === 'target' ? target : strong).answer(input),
    ),
    judge: bounded(judge.judge),
  };
}

/**
 * File activities retry through about an hour of a store that is down or throttling (1, 2, 4 ... 32 s,
 * then a minute apart): a kept pair reaches its save after LLM calls that were paid for, and ten
 * attempts (three minutes) failed it in an S3 outage. Bad input and bugs are not retried (`permanent`);
 * attempts count only while a worker runs them, so workers that are down use none.
 */
const storeRetry: RetryPolicy = {
  initialInterval: '1 second',
  maximumInterval: '1 minute',
  maximumAttempts: 64,
  nonRetryableErrorTypes: permanent,
};

/**
 * File activities. Per-item ones are short; whole-run ones (seed snapshot, pool, final assembly) get
 * long timeouts.
 */
export function fileActivities(taskQueue?: string) {
  // Workers heartbeat every activity (src/worker.ts, autoHeartbeat), so a dead worker's file
  // activity is retried after the heartbeat timeout, not its start-to-close timeout.
  const short = proxyActivities<Activities>({
    taskQueue,
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '10 seconds',
    retry: storeRetry,
  });
  // Whole-run file activities read many files synchronously: a longer heartbeat timeout.
  const long = proxyActivities<Activities>({
    taskQueue,
    startToCloseTimeout: '60 minutes',
    heartbeatTimeout: '60 seconds',
    retry: storeRetry,
  });
  const whole = new Set<string>([
    'prepareSeeds',
    'buildPool',
    'finalizeRun',
    'prepareEval',
    'finalizeEval',
    'prepareQuality',
  ]);
  // (proxyActivities returns a Proxy with no own keys, so pick per name rather than spreading.)
  return new Proxy(short, {
    get: (_, name) => (whole.has(String(name)) ? long : short)[name as keyof typeof short],
  });
}
