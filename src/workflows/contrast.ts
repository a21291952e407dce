import { patched } from '@temporalio/workflow';
import type { MethodConfig, ResolvedConfig, ResolvedRole } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { addUsage, usageInFailure } from '../schemas/records';
import type { JudgeOutput } from '../tasks/judge';
import type { llmActivities } from './activities';

/**
 * The two steps that Contrastive Filtering (the pipeline) and CRR evaluation share: both models
 * answer the same instruction, then the judge scores the pair twice with the answers swapped. Each
 * step's two calls are independent, so they run at the same time.
 */
type Llm = ReturnType<typeof llmActivities>;

/**
 * Patch: a pair's calls both settle before a failure of one is passed on, so the usage of the one
 * that succeeded is counted too (its calls were billed). Histories from before it replay with
 * Promise.all, which passed the first failure on at once.
 */
export const SETTLE_PAIRS = 'settle-pairs';

/** Both results, with their usage counted; `settle` waits for both before passing a failure on. */
async function pair<T extends { usage: Usage }>(
  c: Contrast,
  settle: boolean,
  calls: [Promise<T>, Promise<T>],
) {
  if (!settle) {
    const [a, b] = await Promise.all(calls);
    addUsage(c.usage, a.usage);
    addUsage(c.usage, b.usage);
    return [a, b] as const;
  }
  const [a, b] = await Promise.allSettled(calls);
  for (const r of [a, b]) if (r.status === 'fulfilled') addUsage(c.usage, r.value.usage);
  // The failure passed on carries its calls to the caller; when both failed, the other one's calls
  // would be lost with it, so they are counted here.
  if (a.status === 'rejected') {
    if (b.status === 'rejected') addUsage(c.usage, usageInFailure(b.reason));
    throw a.reason;
  }
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value] as const;
}

export interface Contrast {
  instruction: string;
  /** Names the item in activity labels, e.g. "r1-e00003-i0002 iteration 2". */
  label: string;
  method: MethodConfig;
  usage: Usage;
}

export async function answerBoth(
  llm: Llm,
  roles: ResolvedConfig['roles'],
  c: Contrast,
): Promise<{ strong: string; target: string }> {
  const settle = patched(SETTLE_PAIRS);
  const answer = (who: 'strong' | 'target') =>
    llm.answer({
      who,
      cfg: roles[who],
      method: c.method,
      instruction: c.instruction,
      label: `${who} answer ${c.label}`,
    });
  const [strong, target] = await pair(c, settle, [answer('strong'), answer('target')]);
  return { strong: strong.text, target: target.text };
}

/** The judge's two verdicts: `strongFirst` has the strong answer as A, `targetFirst` as B. */
export async function judgeBothOrders(
  llm: Llm,
  judge: ResolvedRole,
  c: Contrast,
  answers: { strong: string; target: string },
): Promise<{ strongFirst: JudgeOutput; targetFirst: JudgeOutput }> {
  const ask = (a: string, b: string, order: string) =>
    llm.judge({
      judge,
      method: c.method,
      instruction: c.instruction,
      answerA: a,
      answerB: b,
      label: `judge ${c.label} (${order})`,
    });
  const settle = patched(SETTLE_PAIRS);
  const [strongFirst, targetFirst] = await pair(c, settle, [
    ask(answers.strong, answers.target, 'strong first'),
    ask(answers.target, answers.strong, 'target first'),
  ]);
  return { strongFirst: strongFirst.scores, targetFirst: targetFirst.scores };
}
