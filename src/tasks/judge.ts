import { z } from 'zod';
import type { StructuredTask } from './task';

/**
 * Pairwise judging on a 1-10 scale, one prompt for both answers. Asked twice with the answers swapped;
 * the caller averages each answer's two scores (docs/method.md section 5, step 2).
 */
export const judgeOutput = z.object({
  score_a: z.number().min(1).max(10),
  score_b: z.number().min(1).max(10),
});
export type JudgeOutput = z.infer<typeof judgeOutput>;

export interface JudgeTaskInput {
  instruction: string;
  /** The answer shown first; the caller swaps the answers for the second order. */
  answerA: string;
  answerB: string;
}

export const judgeTask: StructuredTask<JudgeTaskInput, JudgeOutput> = {
  kind: 'structured',
  name: 'codeclm_judge',
  stage: 'judge',
  role: 'judge',
  output: judgeOutput,
  system:
    'You are an impartial reviewer of AI assistant answers. Judge helpfulness, relevance, accuracy, ' +
    'depth and whether every requirement of the instruction is met. The order of the answers and ' +
    'their length must not sway you.',
  user:
    'Score each of the two answers to the instruction from 1 (useless) to 10 (excellent).\n\n' +
    '<instruction>\n{{instruction}}\n</instruction>\n\n' +
    '<answer_a>\n{{answer_a}}\n</answer_a>\n\n' +
    '<answer_b>\n{{answer_b}}\n</answer_b>',
  slots: (input) => ({ instruction: input.instruction, answer_a: input.answerA, answer_b: input.answerB }),
  // The schema already bounds both scores to 1-10; they are kept exact for the averaging below.
  clean: (raw) => raw,
};

/** Average each answer's scores over both orders: first call has strong as A, second has strong as B. */
export function combineJudgements(
  strongFirst: JudgeOutput,
  strongSecond: JudgeOutput,
): {
  strong: number;
  target: number;
  gap: number;
} {
  const strong = (strongFirst.score_a + strongSecond.score_b) / 2;
  const target = (strongFirst.score_b + strongSecond.score_a) / 2;
  return { strong, target, gap: strong - target };
}

/**
 * Contrastive Filtering's decision (docs/method.md section 5, step 3): keep the strong answer when the
 * gap exceeds theta (and, if set, the strong score reaches the floor), the target's when the gap is
 * below -theta; otherwise the instruction is too easy (undefined: iterate or drop).
 */
export function keptSource(
  scores: { strong: number; gap: number },
  method: { theta: number; minStrongScore?: number },
): 'strong' | 'target' | undefined {
  if (
    scores.gap > method.theta &&
    (method.minStrongScore === undefined || scores.strong >= method.minStrongScore)
  ) {
    return 'strong';
  }
  return scores.gap < -method.theta ? 'target' : undefined;
}
