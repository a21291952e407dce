import path from 'node:path';
import type { Store } from '../store/store';
import type { Usage } from '../schemas/records';
import type { Plan } from './estimate';
import { stages } from './figures';

/** plan.json in the out dir: written by `run` before the workflow starts, read by finalize. */
export function planFile(outDir: string): string {
  return path.join(outDir, 'plan.json');
}

/** The plan written for this run, or undefined (no plan, another run's, or unreadable). */
export async function readRunPlan(store: Store, runId: string): Promise<Plan | undefined> {
  try {
    const plan = await store.readJson<Plan>(planFile(''));
    return plan && plan.version === 1 && plan.run_id === runId && plan.stages && plan.total
      ? plan
      : undefined;
  } catch {
    return undefined;
  }
}

export interface PlanComparisonRow {
  stage: string;
  planned_calls: number;
  actual_calls: number;
  planned_tokens: number;
  actual_tokens: number;
  /** (actual - planned) / planned, null when nothing was planned. */
  calls_error: number | null;
  tokens_error: number | null;
}

export interface PlanComparison {
  figures: string;
  created_at: string;
  rows: PlanComparisonRow[];
  /** Results the LLM cache served (no call made): the plan counts them as calls. */
  cache_hits: number;
}

/** Per stage and in total: what the plan said against the run's own usage. */
export function comparePlan(plan: Plan, usage: Usage): PlanComparison {
  let hits = 0;
  const actual = (stage?: string) => {
    let calls = 0;
    let tokens = 0;
    for (const [key, u] of Object.entries(usage)) {
      if (stage && !key.startsWith(`${stage}/`)) continue;
      calls += u.calls;
      tokens += u.promptTokens + u.completionTokens;
      if (!stage) hits += u.cacheHits ?? 0;
    }
    return { calls, tokens };
  };
  const row = (
    stage: string,
    planned: { calls: number; tokens: number },
    got: { calls: number; tokens: number },
  ) => ({
    stage,
    planned_calls: planned.calls,
    actual_calls: got.calls,
    planned_tokens: planned.tokens,
    actual_tokens: got.tokens,
    calls_error: relError(got.calls, planned.calls),
    tokens_error: relError(got.tokens, planned.tokens),
  });
  const rows = stages.map((s) => {
    const p = plan.stages[s];
    return row(s, { calls: p.calls, tokens: p.prompt_tokens + p.completion_tokens }, actual(s));
  });
  rows.push(row('total', { calls: plan.total.calls, tokens: plan.total.tokens }, actual()));
  return { figures: plan.figures.label, created_at: plan.created_at, rows, cache_hits: hits };
}

function relError(actual: number, planned: number): number | null {
  return planned > 0 ? Math.round(((actual - planned) / planned) * 1000) / 1000 : null;
}
