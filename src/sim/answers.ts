import type { JudgeOutput } from '../tasks';
import { splitInstruction } from './content';
import { contentWords } from './lexicon';
import { hash32, pick, prng, unit } from './prng';

/**
 * Free-text answers and pairwise judging. The answers carry the signal Contrastive Filtering needs:
 * the strong tier covers the instruction and every added requirement; the weak tier misses the core
 * of about half the basic instructions (fixed per basic instruction, so the same instruction stays
 * easy or hard for it across iterations) and misses each added requirement with a chance that
 * rises with the number of requirements. The judge scores from the text alone: how much of the
 * instruction an answer covers, which requirements it meets, and how much detail it gives.
 *
 * With theta = 3 this keeps about half the basic instructions at iteration 1 (one missed
 * requirement costs more than theta), iterates on the rest, and drops a few percent at a cap of 4.
 */
export const WEAK_MODEL = /target|small|weak|mini|tiny/i;
export const TUNING = {
  weakCoreMiss: 0.55,
  weakConstraintMiss: (n: number) => Math.min(0.9, 0.15 + 0.08 * n),
  /** A rare strong-model slip, so the G < -theta branch (keep the target's answer) is exercised. */
  strongCoreMiss: 0.015,
  corePenalty: 5,
  constraintPenalty: 3.5,
  positionBias: 0.5,
};

export type Tier = 'strong' | 'weak';
export function tierOf(model: string): Tier {
  return WEAK_MODEL.test(model) ? 'weak' : 'strong';
}

/** The words an answer must touch to count as addressing the instruction. */
function keyWords(basic: string): string[] {
  return contentWords(basic).slice(0, 8);
}

const DETAIL: ((a: string, b: string) => string)[] = [
  (a, b) => `Start with ${a}, because it shapes every later decision about ${b}.`,
  (a, b) => `A common pitfall is to treat ${a} and ${b} separately; plan them together.`,
  (a) => `For ${a}, a concrete example helps: pick one realistic case and work it through end to end.`,
  (a, b) => `Check the result against your goal for ${b} and adjust ${a} if it falls short.`,
  (a) => `Keep notes on ${a} so you can explain the choices later.`,
  (a, b) => `If time is short, focus on ${a} first and leave the finer points of ${b} for later.`,
];
const VAGUE = [
  'That is a good question, and the answer really depends on your situation.',
  'There are many factors involved, so it is worth doing some research first.',
  'In general, it is best to take it one step at a time and see what works for you.',
  'You might also want to ask someone with experience for their opinion.',
];

function details(keys: string[], n: number, rand: () => number): string[] {
  const pool = keys.length ? keys : ['the task'];
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(
      DETAIL[(i + Math.floor(rand() * DETAIL.length)) % DETAIL.length]!(
        pool[i % pool.length]!,
        pool[(i + 1) % pool.length]!,
      ),
    );
  return [...new Set(out)];
}

function requirementLine(constraint: string, rand: () => number): string {
  const how = pick(
    ['this is handled below', 'see the section that follows', 'the plan above is adjusted accordingly'],
    rand,
  );
  return `Requirement met (${constraint}): ${how}.`;
}

/** An answer to `instruction` by a model of the given tier. `seed` is the simulator seed. */
export function answer(seed: number, model: string, instruction: string): string {
  const tier = tierOf(model);
  const { basic, constraints } = splitInstruction(instruction);
  const keys = keyWords(basic);
  const rand = prng(hash32(seed, 'answer', model, instruction));
  const coreMiss =
    tier === 'weak'
      ? unit(seed, 'weak-core', basic) < TUNING.weakCoreMiss
      : unit(seed, 'strong-core', basic) < TUNING.strongCoreMiss;
  if (coreMiss) {
    // Off target: vague, none of the instruction's key words, requirements ignored.
    return VAGUE.slice(0, tier === 'weak' ? 2 : 3).join(' ');
  }
  const lines: string[] = [];
  if (tier === 'strong') {
    lines.push(`Here is a complete answer covering ${keys.join(', ') || 'your request'}.`);
    lines.push(...details(keys, 5, rand));
    for (const c of constraints) lines.push(requirementLine(c, rand));
    lines.push('I hope this helps; tell me if you want any part in more depth.');
  } else {
    lines.push(`Sure, here are some thoughts on ${keys.join(', ') || 'your request'}.`);
    lines.push(...details(keys, 2, rand));
    const missChance = TUNING.weakConstraintMiss(constraints.length);
    // Drawn per (instruction, requirement, number of requirements): juggling more of them, it may drop one it met before.
    for (const c of constraints)
      if (unit(seed, 'weak-constraint', basic, c, constraints.length) >= missChance)
        lines.push(requirementLine(c, rand));
  }
  return lines.join('\n');
}

const norm = (t: string) =>
  t
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();

/** The judge's view of one answer: 1-10 before position bias and rounding. */
export function quality(seed: number, instruction: string, response: string): number {
  const { basic, constraints } = splitInstruction(instruction);
  const keys = keyWords(basic);
  const said = new Set(contentWords(response));
  const coverage = keys.length ? keys.filter((k) => said.has(k)).length / keys.length : 1;
  let q = 9.2;
  if (coverage < 0.6) q -= TUNING.corePenalty * (1 - coverage / 0.6);
  const answerText = ` ${norm(response)} `;
  const missed = constraints.filter((c) => !answerText.includes(` ${norm(c)} `)).length;
  q -= Math.min(6, missed * TUNING.constraintPenalty);
  // Detail: fewer than 5 substantive sentences costs up to 1 point.
  const sentences = response.split(/(?<=[.!?])\s+/).filter((s) => s.trim().length > 20).length;
  q -= Math.min(1, Math.max(0, 5 - sentences) * 0.2);
  // A little per-answer noise (fixed per answer, so both orders see the same answer the same way).
  q += (unit(seed, 'judge-noise', response) - 0.5) * 0.6;
  return Math.max(1, Math.min(9.5, q));
}

/** Pairwise scores; the first answer gets a small position bias, as real judges do. */
export function judge(seed: number, instruction: string, a: string, b: string): JudgeOutput {
  const score = (q: number) => Math.max(1, Math.min(10, Math.round(q)));
  return {
    score_a: score(quality(seed, instruction, a) + TUNING.positionBias),
    score_b: score(quality(seed, instruction, b)),
  };
}
