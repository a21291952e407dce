import type { Decision, Judgement } from '../schemas/records';

/**
 * One row of viewer.html: one judged iteration of one instruction, with short keys because a run of
 * 20,000 instructions embeds every row in the page. The page's script (client.ts) reads these keys.
 */
export interface ViewerRow {
  /** record id */
  id: string;
  /** iteration judged, and how many iterations the instruction had in all */
  it: number;
  of: number;
  /** use case, skills */
  uc: string;
  sk: string[];
  /** Self-Rubrics actions applied so far */
  ac: string[];
  /** instruction, strong answer, target answer */
  q: string;
  as: string;
  at: string;
  /** judge scores [A, B]: strong shown first, target shown first */
  sf: [number, number];
  tf: [number, number];
  /** averaged scores and gap (strong - target) */
  s: number;
  t: number;
  g: number;
  d: Decision;
  /** the instruction's final decision (its last iteration's) */
  o: Decision;
  th: number;
  /** minimum strong score, when the run set one */
  ms?: number;
}

export function rowsOf(j: Judgement): ViewerRow[] {
  const last = j.iterations[j.iterations.length - 1]!;
  return j.iterations.map((it) => ({
    id: j.id,
    it: it.iteration,
    of: j.iterations.length,
    uc: j.metadata.use_case,
    sk: j.metadata.skills,
    ac: it.actions,
    q: it.instruction,
    as: it.answers.strong,
    at: it.answers.target,
    sf: [it.judge.strongFirst.score_a, it.judge.strongFirst.score_b],
    tf: [it.judge.targetFirst.score_a, it.judge.targetFirst.score_b],
    s: it.scores.strong,
    t: it.scores.target,
    g: it.scores.gap,
    d: it.decision,
    o: last.decision,
    th: j.theta,
    ...(j.minStrongScore !== undefined ? { ms: j.minStrongScore } : {}),
  }));
}

/** Counts the page shows in its header and offers as filter options. */
export interface ViewerFacets {
  rows: number;
  instructions: number;
  decisions: Record<string, number>;
  useCases: Record<string, number>;
  skills: Record<string, number>;
  iterations: Record<string, number>;
}

export function emptyFacets(): ViewerFacets {
  return { rows: 0, instructions: 0, decisions: {}, useCases: {}, skills: {}, iterations: {} };
}

export function addToFacets(f: ViewerFacets, rows: ViewerRow[]): void {
  if (rows.length > 0) f.instructions++;
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  for (const r of rows) {
    f.rows++;
    bump(f.decisions, r.d);
    bump(f.useCases, r.uc);
    for (const s of r.sk) bump(f.skills, s);
    bump(f.iterations, String(r.it));
  }
}
