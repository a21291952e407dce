import type { MethodConfig, ResolvedConfig, ResolvedRole } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { addUsage } from '../schemas/records';
import type { JudgeOutput } from '../tasks/judge';
import type { llmActivities } from './activities';

/**
 * The two steps that Contrastive Filtering (the pipeline) and CRR evaluation share: both models
 * answer the same instruction, then the judge scores the pair twice with the answers swapped. Each
 * step's two calls are independent, so they run at the same time.
 */
type Llm = ReturnType<typeof llmActivities>;

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
  const [strong, target] = await Promise.all(
    (['strong', 'target'] as const).map((who) =>
      llm.answer({
        who,
        cfg: roles[who],
        method: c.method,
        instruction: c.instruction,
        label: `${who} answer ${c.label}`,
      }),
    ),
  );
  addUsage(c.usage, strong!.usage);
  addUsage(c.usage, target!.usage);
  return { strong: strong!.text, target: target!.text };
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
  const [strongFirst, targetFirst] = await Promise.all([
    ask(answers.strong, answers.target, 'strong first'),
    ask(answers.target, answers.strong, 'target first'),
  ]);
  addUsage(c.usage, strongFirst.usage);
  addUsage(c.usage, targetFirst.usage);
  return { strongFirst: strongFirst.scores, targetFirst: targetFirst.scores };
}
