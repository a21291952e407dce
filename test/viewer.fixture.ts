import type { Decision, Judgement, JudgedIteration } from '../src/schemas/records';
import { rngFrom } from '../src/util/random';

const USE_CASES = ['Code generation', 'Travel planning', 'Math tutoring', 'Email writing', 'Data analysis'];
const SKILLS = ['Python', 'Reasoning', 'Creative writing', 'SQL', 'Summarisation', 'Algebra', 'Etiquette'];
const ACTIONS = [
  'Add a constraint on the output format',
  'Ask for a step-by-step justification',
  'Introduce a rare edge case',
  'Require a comparison of two approaches',
];

/**
 * `n` instructions' judgements as a run writes them, deterministic for a seed: each instruction has
 * 1-3 judged iterations; the last is kept (strong or target) or dropped at `maxIterations`.
 */
export function fixtureJudgements(n: number, seed = 'viewer', maxIterations = 3): Judgement[] {
  const rng = rngFrom(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rng() * xs.length)]!;
  const theta = 3;
  const out: Judgement[] = [];
  for (let i = 0; i < n; i++) {
    const id = `r1-e${String(i % 997).padStart(5, '0')}-i${String(i).padStart(5, '0')}`;
    const useCase = USE_CASES[i % USE_CASES.length]!;
    const skills = [pick(SKILLS), pick(SKILLS)].filter((s, k, a) => a.indexOf(s) === k);
    const iterations: JudgedIteration[] = [];
    const actions: string[] = [];
    const last = 1 + Math.floor(rng() * maxIterations);
    for (let it = 1; it <= last; it++) {
      if (it > 1) actions.push(pick(ACTIONS));
      const final = it === last;
      const outcome: Decision = !final
        ? 'iterated'
        : last === maxIterations && rng() < 0.4
          ? 'dropped'
          : rng() < 0.8
            ? 'kept-strong'
            : 'kept-target';
      const strong = outcome === 'kept-target' ? 4 : 6 + Math.floor(rng() * 4);
      const gap = outcome === 'kept-strong' ? 3.5 + rng() * 2 : outcome === 'kept-target' ? -4 : rng() * 2;
      const target = strong - gap;
      iterations.push({
        iteration: it,
        instruction: `Instruction ${i} (${useCase}), iteration ${it}: ${actions.join('; ') || 'basic request'}.`,
        actions: [...actions],
        answers: {
          strong: `Strong answer to instruction ${i} iteration ${it}. ${'Detail. '.repeat(8)}`,
          target: `Target answer to instruction ${i} iteration ${it}.`,
        },
        judge: {
          strongFirst: { score_a: strong, score_b: target },
          targetFirst: { score_a: target, score_b: strong },
        },
        scores: { strong, target, gap },
        decision: outcome,
      });
    }
    out.push({ id, run_id: 'viewer-fixture', metadata: { use_case: useCase, skills }, theta, iterations });
  }
  return out;
}
