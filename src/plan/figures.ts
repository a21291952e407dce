/**
 * The empirical figures a plan multiplies the method's structure by: how often Contrastive
 * Filtering keeps an instruction at each iteration, how many tokens a call of each stage and role
 * takes, and how many extra calls repairs of invalid output add. They come from earlier runs of
 * this machine (./history.ts) or, when there are none, from the bench (bench/RESULTS.md).
 */

export const stages = ['encode', 'rubrics', 'decode', 'improve', 'answer', 'judge'] as const;
export type Stage = (typeof stages)[number];

/** Which role makes each stage's calls (answer is made by both strong and target). */
export const stageRoles: Record<Stage, ('strong' | 'target' | 'judge')[]> = {
  encode: ['strong'],
  rubrics: ['strong'],
  decode: ['strong'],
  improve: ['strong'],
  answer: ['strong', 'target'],
  judge: ['judge'],
};

export interface TokensPerCall {
  prompt: number;
  completion: number;
}

export interface Figures {
  source: 'bench' | 'history';
  /** Human label printed with every plan ("figures: ..."). */
  label: string;
  /** Earlier runs measured (0 for the bench defaults). */
  runs: number;
  /** P(kept | judged at iteration i), i = 1.. (index 0 is iteration 1). Later iterations reuse the last. */
  keepRates: number[];
  /** Calls made per call the method's structure asks for (repairs of invalid output, >= 1). */
  callsPerStructuralCall: Record<Stage, number>;
  /** Tokens per call, keyed "stage/role"; decode's completion is per decoded instruction instead. */
  tokens: Record<string, TokensPerCall>;
  /** Encode's prompt without the seed: the seed adds its characters / CHARS_PER_TOKEN. */
  encodePromptOverhead: number;
  /** Decoded instructions removed as duplicates, per instruction decoded. */
  duplicateRate: number;
}

/** Characters per token, for a seed's share of the encode prompt (OpenAI's rule of thumb). */
export const CHARS_PER_TOKEN = 4;

/**
 * The bench's efficiency run (bench/RESULTS.md, "efficiency": 120 instructions over 12 pool entries
 * on the simulator, theta 3, 4 iterations): kept 65 of 120 judged at iteration 1, 15 of 55 at 2,
 * 16 of 40 at 3 and 15 of 24 at 4; every stage made exactly its structural calls (no repairs).
 *
 * Tokens per call are the bench's totals per stage over its calls: encode 6129/32 = 191.5, rubrics
 * 3407/12 = 283.9, decode 4737/12 = 394.8 (10 instructions a call), improve 25916/119 = 217.8,
 * answer 84259/478 = 176.3, judge 182954/478 = 382.7. The bench does not split prompt from
 * completion, so the split is the one the same simulator showed in test/plan.e2e.test.ts's runs:
 * prompt share encode 0.88, rubrics 0.45, improve 0.67; decode 131 prompt tokens a call (the rest,
 * 26.4 per instruction, is completion); answer 60 prompt tokens, the strong answer's completion
 * 2.1 times the target's (158 vs 74 around the bench's mean of 116); judge 7 completion tokens.
 */
export const BENCH_FIGURES: Figures = {
  source: 'bench',
  label: 'defaults from the bench (bench/RESULTS.md efficiency run on the simulator, theta 3)',
  runs: 0,
  keepRates: [65 / 120, 15 / 55, 16 / 40, 15 / 24],
  callsPerStructuralCall: { encode: 1, rubrics: 1, decode: 1, improve: 1, answer: 1, judge: 1 },
  tokens: {
    'encode/strong': { prompt: 168.5, completion: 23 },
    'rubrics/strong': { prompt: 127.8, completion: 156.1 },
    // decode's completion is per decoded instruction
    'decode/strong': { prompt: 131, completion: 26.4 },
    'improve/strong': { prompt: 145.9, completion: 71.9 },
    'answer/strong': { prompt: 60, completion: 158 },
    'answer/target': { prompt: 60, completion: 74 },
    'judge/judge': { prompt: 375.7, completion: 7 },
  },
  // The bench's seeds (examples/seeds.jsonl) average 110 characters: 168.5 - 110 / 4.
  encodePromptOverhead: 141,
  duplicateRate: 0,
};
