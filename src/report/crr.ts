/**
 * The evaluation protocol of docs/method.md section 7, as pure functions (no I/O, safe in workflow code).
 *
 * The judge sees each instruction twice: once with the target's answer first and once with the strong
 * model's answer first. An answer wins an order when it gets the higher score in that order. It wins
 * the instruction only when it wins both orders; every other combination (one win each, an equal
 * score in either order) is a tie. Capacity Recovery Ratio = (target wins + ties) / judged.
 *
 * Items whose answers or judgements failed are not judged: they are left out of the denominator and
 * reported separately with their reasons, so a flaky endpoint never reads as a loss or a tie.
 */

export type Verdict = 'target' | 'tie' | 'strong';

/** One judge call's scores, named by whose answer they belong to (not by position). */
export interface OrderScores {
  target: number;
  strong: number;
}

/** The four scores of one instruction. */
export interface EvalScores {
  /** Order 1: target's answer shown as A, strong's as B. */
  target_first: OrderScores;
  /** Order 2: strong's answer shown as A, target's as B. */
  strong_first: OrderScores;
}

/** Judge outputs by position -> scores by owner, for the two orders. */
export function scoresFromJudgements(
  targetFirst: { score_a: number; score_b: number },
  strongFirst: { score_a: number; score_b: number },
): EvalScores {
  return {
    target_first: { target: targetFirst.score_a, strong: targetFirst.score_b },
    strong_first: { target: strongFirst.score_b, strong: strongFirst.score_a },
  };
}

function orderWinner(s: OrderScores): Verdict {
  if (s.target > s.strong) return 'target';
  if (s.strong > s.target) return 'strong';
  return 'tie';
}

/** Wins only when it wins in both orders; anything else is a tie. */
export function verdict(scores: EvalScores): Verdict {
  const first = orderWinner(scores.target_first);
  const second = orderWinner(scores.strong_first);
  return first === second ? first : 'tie';
}

export interface CrrCell {
  total: number;
  target_wins: number;
  ties: number;
  strong_wins: number;
  /** (target wins + ties) / total, in [0, 1]; null when nothing was judged. */
  crr: number | null;
  /** The same as a percentage with two decimals, as the paper prints it. */
  crr_percent: number | null;
}

export interface CrrSummary {
  overall: CrrCell;
  /** Only present when at least one item has a category; uncategorised items go under "(none)". */
  by_category: Record<string, CrrCell>;
}

export const NO_CATEGORY = '(none)';

export function crrCell(verdicts: readonly Verdict[]): CrrCell {
  let target = 0;
  let ties = 0;
  let strong = 0;
  for (const v of verdicts) {
    if (v === 'target') target++;
    else if (v === 'tie') ties++;
    else strong++;
  }
  const total = verdicts.length;
  const crr = total === 0 ? null : (target + ties) / total;
  return {
    total,
    target_wins: target,
    ties,
    strong_wins: strong,
    crr,
    crr_percent: crr === null ? null : Math.round(crr * 10000) / 100,
  };
}

/** CRR overall and per category, from judged items. Categories are listed alphabetically. */
export function summariseCrr(items: readonly { category?: string | null; verdict: Verdict }[]): CrrSummary {
  const groups = new Map<string, Verdict[]>();
  const anyCategory = items.some((i) => i.category);
  if (anyCategory) {
    for (const item of items) {
      const key = item.category || NO_CATEGORY;
      const list = groups.get(key) ?? [];
      list.push(item.verdict);
      groups.set(key, list);
    }
  }
  const by_category: Record<string, CrrCell> = {};
  for (const key of [...groups.keys()].sort((a, b) => a.localeCompare(b)))
    by_category[key] = crrCell(groups.get(key)!);
  return { overall: crrCell(items.map((i) => i.verdict)), by_category };
}
