import type { ConfigSummary } from '../config/describe';
import { dialectsByRole, dialectText } from './dialects';
import type { DatasetRecord, Metadata, Usage, UsageCell } from '../schemas/records';
import { usageTotals } from '../schemas/records';
import type { Counters, Failure, RunProgress } from '../schemas/run';
import { costSplitLine, type Cost } from './cost';
import { money, table, usageRows } from './markdown';
import { renderRemovedMarkdown, type RemovedSection } from './removed';
import { comparePlan, type PlanComparison } from '../plan/compare';
import type { Plan } from '../plan/estimate';

/** report.json: everything a user checks after a run, computed from the run's own files and counters. */
export interface Report {
  run_id: string;
  out_dir: string;
  state: string;
  target_size: number;
  started_at: string;
  finished_at: string | null;
  wall_seconds: number;
  /** Endpoint host and model per role, and the method and limits in force (no keys). */
  config: ConfigSummary | null;
  counts: Counters & { generated: number; kept_in_dataset: number };
  /** Per Self-Rubrics iteration: how many were judged, kept, sent on as too easy, dropped at the cap. */
  iterations: IterationRow[];
  usage: {
    per_stage_role: Usage;
    per_role: Record<string, UsageCell>;
    total: { calls: number; prompt_tokens: number; completion_tokens: number; cache_hits?: number };
    cost: Cost | null;
  };
  distributions: {
    seeds: Distribution;
    pool: Distribution;
    kept: Distribution;
  };
  /** Jensen-Shannon divergence (base 2: 0 = same distribution, 1 = disjoint) of the seeds' metadata. */
  divergence: {
    use_cases: { seeds_pool: number | null; seeds_kept: number | null };
    skills: { seeds_pool: number | null; seeds_kept: number | null };
  };
  failures_by_stage: Record<string, number>;
  failures: Failure[];
  /** Instructions removed after decode (duplicates, benchmark contamination), by reason with examples. */
  removed?: RemovedSection;
  /** The plan made before the run (plan.json) against what the run used; absent without a plan. */
  plan_vs_actual?: PlanComparison;
}

export interface Distribution {
  items: number;
  use_cases: Record<string, number>;
  skills: Record<string, number>;
}

export interface IterationRow {
  iteration: number;
  /** null when the run's counters predate per-iteration judging counts. */
  judged: number | null;
  kept: number;
  /** |gap| <= theta before the cap: improved and judged again. */
  too_easy: number | null;
  dropped: number;
}

export function distribution(metadata: Metadata[]): Distribution {
  const use_cases: Record<string, number> = {};
  const skills: Record<string, number> = {};
  for (const m of metadata) {
    use_cases[m.use_case] = (use_cases[m.use_case] ?? 0) + 1;
    for (const s of m.skills) skills[s] = (skills[s] ?? 0) + 1;
  }
  return { items: metadata.length, use_cases: sortByCount(use_cases), skills: sortByCount(skills) };
}

function sortByCount(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/**
 * Jensen-Shannon divergence between two count tables, in bits: symmetric, bounded by 1, and finite
 * even when one side has keys the other lacks (unlike KL). null when either side is empty.
 */
export function jensenShannon(p: Record<string, number>, q: Record<string, number>): number | null {
  const sp = Object.values(p).reduce((a, b) => a + b, 0);
  const sq = Object.values(q).reduce((a, b) => a + b, 0);
  if (sp <= 0 || sq <= 0) return null;
  let js = 0;
  for (const key of new Set([...Object.keys(p), ...Object.keys(q)])) {
    const a = (p[key] ?? 0) / sp;
    const b = (q[key] ?? 0) / sq;
    const m = (a + b) / 2;
    if (a > 0) js += 0.5 * a * Math.log2(a / m);
    if (b > 0) js += 0.5 * b * Math.log2(b / m);
  }
  return Math.round(Math.min(1, Math.max(0, js)) * 10000) / 10000;
}

export function usagePerRole(usage: Usage): Record<string, UsageCell> {
  const out: Record<string, UsageCell> = {};
  for (const [key, cell] of Object.entries(usage)) {
    const role = key.slice(key.lastIndexOf('/') + 1);
    const cur = (out[role] ??= { calls: 0, promptTokens: 0, completionTokens: 0 });
    cur.calls += cell.calls;
    cur.promptTokens += cell.promptTokens;
    cur.completionTokens += cell.completionTokens;
    if (cell.cacheHits) cur.cacheHits = (cur.cacheHits ?? 0) + cell.cacheHits;
  }
  return out;
}

/**
 * Kept and dropped per iteration. An instruction judged at iteration i is kept (|gap| > theta), or
 * too easy: improved and judged again at i+1, or dropped when i is the last iteration.
 */
export function iterationRows(
  c: Counters & { judgedByIteration?: Record<string, number> },
  maxIterations?: number,
): IterationRow[] {
  const keys = [...Object.keys(c.keptByIteration), ...Object.keys(c.judgedByIteration ?? {})].map(Number);
  const last = Math.max(maxIterations ?? 0, ...keys, c.droppedAtCap > 0 ? 1 : 0);
  const rows: IterationRow[] = [];
  for (let i = 1; i <= last; i++) {
    const kept = c.keptByIteration[String(i)] ?? 0;
    const dropped = i === last ? c.droppedAtCap : 0;
    const judged = c.judgedByIteration ? (c.judgedByIteration[String(i)] ?? 0) : null;
    rows.push({
      iteration: i,
      judged,
      kept,
      too_easy: judged === null ? null : Math.max(0, judged - kept - dropped),
      dropped,
    });
  }
  return rows;
}

export function buildReport(input: {
  progress: RunProgress;
  records: DatasetRecord[];
  seedMetadata: Metadata[];
  pool: Metadata[];
  config?: ConfigSummary;
  cost?: Cost | null;
  plan?: Plan;
  removed?: RemovedSection;
}): Report {
  const { progress } = input;
  const total = usageTotals(progress.usage);
  const c = progress.counters;
  const seeds = distribution(input.seedMetadata);
  const pool = distribution(input.pool);
  const kept = distribution(input.records.map((r) => r.metadata));
  const failures_by_stage: Record<string, number> = {};
  for (const f of progress.failures) failures_by_stage[f.stage] = (failures_by_stage[f.stage] ?? 0) + 1;
  return {
    run_id: progress.runId,
    out_dir: progress.outDir,
    // finalizeRun runs just before the workflow marks itself completed.
    state: progress.state === 'running' || progress.state === 'paused' ? 'completed' : progress.state,
    target_size: progress.size,
    started_at: new Date(progress.startedAt).toISOString(),
    finished_at: progress.finishedAt ? new Date(progress.finishedAt).toISOString() : null,
    wall_seconds: Math.round(((progress.finishedAt ?? progress.startedAt) - progress.startedAt) / 100) / 10,
    config: input.config ?? null,
    counts: { ...c, generated: c.kept + c.dropped + c.failed, kept_in_dataset: input.records.length },
    iterations: iterationRows(c, input.config?.method.maxIterations),
    usage: {
      per_stage_role: progress.usage,
      per_role: usagePerRole(progress.usage),
      total: {
        calls: total.calls,
        prompt_tokens: total.promptTokens,
        completion_tokens: total.completionTokens,
        ...(total.cacheHits ? { cache_hits: total.cacheHits } : {}),
      },
      cost: input.cost ?? null,
    },
    distributions: { seeds, pool, kept },
    divergence: {
      use_cases: {
        seeds_pool: jensenShannon(seeds.use_cases, pool.use_cases),
        seeds_kept: jensenShannon(seeds.use_cases, kept.use_cases),
      },
      skills: {
        seeds_pool: jensenShannon(seeds.skills, pool.skills),
        seeds_kept: jensenShannon(seeds.skills, kept.skills),
      },
    },
    failures_by_stage,
    failures: progress.failures,
    ...(input.removed ? { removed: input.removed } : {}),
    ...(input.plan ? { plan_vs_actual: comparePlan(input.plan, progress.usage) } : {}),
  };
}

/** Rows of the union of keys, ordered by the first table's counts, shown as counts and shares. */
export function distributionRows(
  dists: Record<string, number>[],
  limit = 15,
): { key: string; counts: number[]; shares: number[] }[] {
  const totals = dists.map((d) => Object.values(d).reduce((a, b) => a + b, 0));
  const keys = [...new Set(dists.flatMap((d) => Object.keys(d)))]
    .sort(
      (a, b) =>
        (dists[0]![b] ?? 0) - (dists[0]![a] ?? 0) ||
        (dists[1]?.[b] ?? 0) - (dists[1]?.[a] ?? 0) ||
        a.localeCompare(b),
    )
    .slice(0, limit);
  return keys.map((key) => ({
    key,
    counts: dists.map((d) => d[key] ?? 0),
    shares: dists.map((d, i) => (totals[i] ? (d[key] ?? 0) / totals[i]! : 0)),
  }));
}

function topRows(dists: Record<string, number>[], names: string[], limit = 15): string {
  const rows = distributionRows(dists, limit).map((r) => [
    r.key,
    ...r.counts.map((n, i) => `${n} (${(r.shares[i]! * 100).toFixed(1)}%)`),
  ]);
  return table(['', ...names], rows);
}

function js(x: number | null): string {
  return x === null ? 'n/a' : x.toFixed(4);
}

/** The chart files report.md links to, by key (written next to it by the sink). */
export type ChartLinks = Partial<
  Record<'counts' | 'iterations' | 'gaps' | 'useCases' | 'skills' | 'tokens', string>
>;

export function renderReportMarkdown(r: Report, charts: ChartLinks = {}): string {
  const c = r.counts;
  const gaps = Object.keys(c.gapHistogram)
    .map(Number)
    .sort((a, b) => a - b);
  const cost = r.usage.cost;
  // LLM cache (src/llm/cached.ts): hits cost no call and no token; the column shows when any hit.
  const hits = Object.values(r.usage.per_stage_role).some((u) => u.cacheHits);
  // Batch API calls (src/batch): how many of each row's calls, and the cost of that part.
  const batched = Object.values(r.usage.per_stage_role).some((u) => u.batchCalls);
  const usageTableRows = usageRows(r.usage.per_stage_role, (k, u) => [
    ...(hits ? [u.cacheHits ?? 0] : []),
    ...(batched ? [u.batchCalls ?? 0] : []),
    ...(cost
      ? [cost.per_stage_role_usd[k] !== undefined ? money(cost.per_stage_role_usd[k]!) : 'no price']
      : []),
    ...(cost && batched ? [money(cost.per_stage_role_batch_usd?.[k] ?? 0)] : []),
  ]);
  const img = (key: keyof ChartLinks, alt: string) => (charts[key] ? [`![${alt}](${charts[key]})`, ''] : []);
  const roles = r.config?.roles;
  // The structured-output dialect each role's calls were sent in (auto mode finds it per server).
  const dialects = new Map(dialectsByRole(r.usage.per_stage_role).map((d) => [d.role, dialectText(d)]));
  return [
    `# codeclm run ${r.run_id}`,
    '',
    `State **${r.state}**. Target size ${r.target_size}; kept **${c.kept}** pairs in ${r.wall_seconds} s ` +
      `(${r.started_at}${r.finished_at ? ` to ${r.finished_at}` : ''}).`,
    '',
    `The pairs are in [dataset.jsonl](dataset.jsonl); every judged instruction, kept or not, is in [viewer.html](viewer.html).`,
    '',
    ...(roles
      ? [
          table(
            ['role', 'model', 'endpoint', ...(dialects.size ? ['structured output'] : [])],
            (['strong', 'target', 'judge'] as const).map((k) => [
              k,
              roles[k].model,
              roles[k].endpoint,
              ...(dialects.size ? [dialects.get(k) ?? 'no structured calls'] : []),
            ]),
          ),
          '',
        ]
      : []),
    '## Counts per stage',
    '',
    table(...stageCountsTable(c)),
    '',
    `Every generated instruction ends kept, dropped or failed: ${c.kept} + ${c.dropped} + ${c.failed} = ${c.generated}.`,
    '',
    ...leftOverLines(r.state, c).flatMap((line) => [line, '']),
    ...renderRemovedMarkdown(r.removed, c),
    ...img('counts', 'counts per stage'),
    '## Kept per iteration',
    '',
    table(
      ['iteration', 'judged', 'kept', 'too easy (improved again)', 'dropped at cap'],
      r.iterations.map((i) => [i.iteration, i.judged ?? 'n/a', i.kept, i.too_easy ?? 'n/a', i.dropped]),
    ),
    '',
    `Dropped at the iteration cap: ${c.droppedAtCap}. Kept with the target's answer (gap < -theta): ${c.keptFromTarget}.`,
    '',
    ...img('iterations', 'kept and dropped per iteration'),
    '## Score gap (strong - target) histogram',
    '',
    table(
      ['gap', 'judgements'],
      gaps.map((g) => [g, c.gapHistogram[String(g)]!]),
    ),
    '',
    ...img('gaps', 'score gap histogram'),
    '## Use cases: seeds vs pool vs kept',
    '',
    `Jensen-Shannon divergence (bits; 0 = identical, 1 = disjoint): seeds-pool **${js(r.divergence.use_cases.seeds_pool)}**, seeds-kept **${js(r.divergence.use_cases.seeds_kept)}**.`,
    '',
    topRows(
      [r.distributions.seeds.use_cases, r.distributions.pool.use_cases, r.distributions.kept.use_cases],
      ['seeds', 'pool', 'kept'],
    ),
    '',
    ...img('useCases', 'use-case distribution'),
    '## Skills: seeds vs pool vs kept',
    '',
    `Jensen-Shannon divergence (bits): seeds-pool **${js(r.divergence.skills.seeds_pool)}**, seeds-kept **${js(r.divergence.skills.seeds_kept)}**.`,
    '',
    topRows(
      [r.distributions.seeds.skills, r.distributions.pool.skills, r.distributions.kept.skills],
      ['seeds', 'pool', 'kept'],
    ),
    '',
    ...img('skills', 'skill distribution'),
    '## LLM calls and tokens per stage and role',
    '',
    table(
      [
        'stage/role',
        'calls',
        'prompt tokens',
        'completion tokens',
        ...(hits ? ['cache hits'] : []),
        ...(batched ? ['batch calls'] : []),
        ...(cost ? ['cost'] : []),
        ...(cost && batched ? ['of it batch'] : []),
      ],
      usageTableRows,
    ),
    '',
    `Total: ${r.usage.total.calls} calls, ${r.usage.total.prompt_tokens} prompt + ${r.usage.total.completion_tokens} completion tokens` +
      (r.usage.total.cache_hits
        ? ` (plus ${r.usage.total.cache_hits} results from the LLM cache, at no cost)`
        : '') +
      (cost
        ? `; cost ${money(cost.total_usd)}${cost.unpriced_roles.length ? ` (roles without prices: ${cost.unpriced_roles.join(', ')})` : ''}.`
        : '; no prices configured (set pricePerMTokIn/pricePerMTokOut on the roles for a cost).'),
    ...(cost && costSplitLine(cost, money) ? ['', `${costSplitLine(cost, money)}.`] : []),
    '',
    ...img('tokens', 'tokens per stage and role'),
    ...planSection(r.plan_vs_actual),
    '## Failures',
    '',
    r.failures.length
      ? [
          table(
            ['stage', 'failures listed'],
            Object.entries(r.failures_by_stage).map(([s, n]) => [s, n]),
          ),
          '',
          table(
            ['item', 'stage', 'reason'],
            r.failures.map((f) => [f.item, f.stage, f.reason]),
          ),
        ].join('\n')
      : 'None.',
    '',
    ...(r.failures.length && c.failed + c.encodeFailed > r.failures.length
      ? [`(${r.failures.length} failures listed; ${c.failed + c.encodeFailed} items failed in all.)`, '']
      : []),
  ].join('\n');
}

/**
 * What a run left undone, for report.md and report.html: instructions in flight when it was
 * cancelled, and decoded instructions it never started (it had kept its size, or was cancelled).
 */
export function leftOverLines(state: string, c: Counters): string[] {
  const lines: string[] = [];
  const inFlight = c.leftInFlight ?? 0;
  const notStarted = c.notStarted ?? 0;
  if (inFlight > 0)
    lines.push(
      `Left in flight: ${inFlight} instruction${inFlight === 1 ? '' : 's'}, cancelled ` +
        `(${c.kept} kept + ${c.dropped} dropped + ${c.failed} failed + ${inFlight} left in flight = ${c.instructions} started).`,
    );
  if (notStarted > 0)
    lines.push(
      `Decoded but not started: ${notStarted} instruction${notStarted === 1 ? '' : 's'} ` +
        `(${state === 'cancelled' ? 'the run was cancelled' : 'the run had kept its target size'}).`,
    );
  return lines;
}

/** The counts-per-stage table, shared by report.md and report.html. */
export function stageCountsTable(c: Counters): [string[], number[][]] {
  return [
    [
      'seeds',
      'encoded',
      'encode failed',
      'pool',
      'instructions',
      'kept',
      'dropped',
      'failed',
      'duplicates removed',
      'rounds',
    ],
    [
      [
        c.seeds,
        c.encoded,
        c.encodeFailed,
        c.pool,
        c.instructions,
        c.kept,
        c.dropped,
        c.failed,
        c.duplicatesRemoved,
        c.rounds,
      ],
    ],
  ];
}

/** Plan vs actual (report.md): the plan's calls and tokens per stage against the run's. */
function planSection(p: PlanComparison | undefined): string[] {
  if (!p) return [];
  return [
    '## Plan vs actual',
    '',
    planNote(p),
    '',
    table(...planComparisonTable(p)),
    '',
    ...planCacheNote(p),
  ];
}

export function planNote(p: PlanComparison): string {
  return `Planned before the run (${p.created_at}); figures: ${p.figures}.`;
}

export function planCacheNote(p: PlanComparison): string[] {
  return p.cache_hits
    ? [`The LLM cache served ${p.cache_hits} results without a call; the plan counts them as calls.`, '']
    : [];
}

/** The plan-vs-actual table, shared by report.md and report.html. */
export function planComparisonTable(p: PlanComparison): [string[], (string | number)[][]] {
  const err = (x: number | null) => (x === null ? 'n/a' : `${x > 0 ? '+' : ''}${(x * 100).toFixed(1)}%`);
  return [
    [
      'stage',
      'planned calls',
      'actual calls',
      'calls error',
      'planned tokens',
      'actual tokens',
      'tokens error',
    ],
    p.rows.map((r) => [
      r.stage,
      r.planned_calls,
      r.actual_calls,
      err(r.calls_error),
      r.planned_tokens,
      r.actual_tokens,
      err(r.tokens_error),
    ]),
  ];
}
