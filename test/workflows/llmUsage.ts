import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../src/activities';
import type { JudgeInput } from '../../src/activities/stages';
import { LlmFailure } from '../../src/llm/types';
import { addUsage, usageInFailure, usageTotals, type Usage } from '../../src/schemas/records';
import { judgeBothOrders } from '../../src/workflows/contrast';

/**
 * Test workflow: one real `judge` activity under a fast retry policy, reporting the usage it was
 * billed for: the result's on success, the failure details' (usageInFailure, as the pipeline's
 * catch sites read them) on a final failure.
 */
const { judge } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '100 milliseconds',
    backoffCoefficient: 1,
    maximumAttempts: 6,
    nonRetryableErrorTypes: [LlmFailure.Rejected, LlmFailure.ContextLength],
  },
});

export interface LlmUsageOutcome {
  ok: boolean;
  type?: string;
  message?: string;
  calls: number;
  usage: Usage;
}

export async function llmUsageWorkflow(input: JudgeInput): Promise<LlmUsageOutcome> {
  try {
    const { usage } = await judge(input);
    return { ok: true, calls: usageTotals(usage).calls, usage };
  } catch (err) {
    if (!(err instanceof ActivityFailure && err.cause instanceof ApplicationFailure)) throw err;
    const usage = usageInFailure(err) ?? {};
    return {
      ok: false,
      type: err.cause.type ?? undefined,
      message: err.cause.message,
      calls: usageTotals(usage).calls,
      usage,
    };
  }
}

/**
 * The judge's two orders (the pipeline's and CRR evaluation's judgeBothOrders) where one call fails
 * for good: the usage of both counts, the failed one's from its failure details.
 */
export async function pairUsageWorkflow(input: JudgeInput): Promise<LlmUsageOutcome> {
  const contrast = {
    instruction: input.instruction,
    label: input.label,
    method: input.method,
    usage: {} as Usage,
  };
  const llm = { judge } as unknown as Parameters<typeof judgeBothOrders>[0];
  try {
    await judgeBothOrders(llm, input.judge, contrast, { strong: input.answerA, target: input.answerB });
    return { ok: true, calls: usageTotals(contrast.usage).calls, usage: contrast.usage };
  } catch (err) {
    addUsage(contrast.usage, usageInFailure(err));
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    return {
      ok: false,
      type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
      calls: usageTotals(contrast.usage).calls,
      usage: contrast.usage,
    };
  }
}
