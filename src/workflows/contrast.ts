import { patched } from '@temporalio/workflow';
import type { MethodConfig, ResolvedConfig, ResolvedRole } from '../schemas/config';
import type { Activities } from '../activities';
import type { Usage } from '../schemas/records';
import { addUsage, usageInFailure } from '../schemas/records';
import type { Answers, Verdicts } from './loop';
import { SETTLE_PAIRS } from './patches';

/**
 * The two steps that Contrastive Filtering (the pipeline) and CRR evaluation share: both models
 * answer the same instruction, then the judge scores the pair twice with the answers swapped. Each
 * step's two calls are independent, so they run at the same time. The workflows pass their activity
 * proxies as `llm`; bench/baseline.ts passes the activity functions themselves, with `settle` given
 * (outside a workflow there is no patch to ask).
 */
type Llm = Pick<Activities, 'answer' | 'judge'>;

/**
 * Both results, with their usage counted; `settle` (SETTLE_PAIRS) waits for both before passing a
 * failure on, so the usage of the one that succeeded is counted too (its calls were billed).
 */
async function pair<T extends { usage: Usage }>(
  c: Contrast,
  settle: boolean,
  calls: [Promise<T>, Promise<T>],
) {
  // Legacy (src/workflows/legacy/README.md): histories from before SETTLE_PAIRS replay with
  // Promise.all, which passed the first failure on at once. (Inline, not a call, so that those
  // histories see their steps at the same microtask as they ran.)
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
  settle = patched(SETTLE_PAIRS),
): Promise<Answers> {
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
  answers: Answers,
  settle = patched(SETTLE_PAIRS),
): Promise<Verdicts> {
  const ask = (a: string, b: string, order: string) =>
    llm.judge({
      judge,
      method: c.method,
      instruction: c.instruction,
      answerA: a,
      answerB: b,
      label: `judge ${c.label} (${order})`,
    });
  const [strongFirst, targetFirst] = await pair(c, settle, [
    ask(answers.strong, answers.target, 'strong first'),
    ask(answers.target, answers.strong, 'target first'),
  ]);
  return { strongFirst: strongFirst.scores, targetFirst: targetFirst.scores };
}
