import type { DatasetRecord, Metadata, Usage } from '../schemas/records';
import { usageTotals } from '../schemas/records';
import type { Counters, Failure, RunProgress } from '../schemas/run';

/** report.json: everything a user checks after a run, computed from the run's own files and counters. */
export interface Report {
  run_id: string;
  out_dir: string;
  target_size: number;
  wall_seconds: number;
  counts: Counters & { generated: number; kept_in_dataset: number };
  usage: { per_stage_role: Usage; total: { calls: number; prompt_tokens: number; completion_tokens: number } };
  distributions: {
    seeds: Distribution;
    pool: Distribution;
    kept: Distribution;
  };
  failures: Failure[];
}

export interface Distribution {
  items: number;
  use_cases: Record<string, number>;
  skills: Record<string, number>;
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

export function buildReport(input: {
  progress: RunProgress;
  records: DatasetRecord[];
  seedMetadata: Metadata[];
  pool: Metadata[];
}): Report {
  const { progress } = input;
  const total = usageTotals(progress.usage);
  const c = progress.counters;
  return {
    run_id: progress.runId,
    out_dir: progress.outDir,
    target_size: progress.size,
    wall_seconds: Math.round(((progress.finishedAt ?? progress.startedAt) - progress.startedAt) / 100) / 10,
    counts: { ...c, generated: c.kept + c.dropped + c.failed, kept_in_dataset: input.records.length },
    usage: {
      per_stage_role: progress.usage,
      total: { calls: total.calls, prompt_tokens: total.promptTokens, completion_tokens: total.completionTokens },
    },
    distributions: {
      seeds: distribution(input.seedMetadata),
      pool: distribution(input.pool),
      kept: distribution(input.records.map((r) => r.metadata)),
    },
    failures: progress.failures,
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function topRows(dist: Record<string, number>[], names: string[], limit = 15): string {
  const keys = [...new Set(dist.flatMap((d) => Object.keys(d)))]
    .sort((a, b) => (dist[0]![b] ?? 0) - (dist[0]![a] ?? 0) || a.localeCompare(b))
    .slice(0, limit);
  return table(['', ...names], keys.map((k) => [k, ...dist.map((d) => d[k] ?? 0)]));
}

export function renderReportMarkdown(r: Report): string {
  const c = r.counts;
  const iterations = Object.keys(c.keptByIteration).sort();
  const gaps = Object.keys(c.gapHistogram).map(Number).sort((a, b) => a - b);
  const usageRows = Object.entries(r.usage.per_stage_role)
    .sort()
    .map(([k, u]) => [k, u.calls, u.promptTokens, u.completionTokens]);
  return [
    `# codeclm run ${r.run_id}`,
    '',
    `Target size ${r.target_size}; kept ${c.kept} pairs in ${r.wall_seconds} s.`,
    '',
    '## Counts per stage',
    table(
      ['seeds', 'encoded', 'encode failed', 'pool', 'instructions', 'kept', 'dropped', 'failed', 'duplicates removed', 'rounds'],
      [[c.seeds, c.encoded, c.encodeFailed, c.pool, c.instructions, c.kept, c.dropped, c.failed, c.duplicatesRemoved, c.rounds]],
    ),
    '',
    `Every generated instruction ends kept, dropped or failed: ${c.kept} + ${c.dropped} + ${c.failed} = ${c.generated}.`,
    '',
    '## Kept per iteration',
    table(['iteration', 'kept'], iterations.map((i) => [i, c.keptByIteration[i]!])),
    '',
    `Dropped at the iteration cap: ${c.droppedAtCap}. Kept with the target's answer (gap < -theta): ${c.keptFromTarget}.`,
    '',
    '## Score gap (strong - target) histogram',
    table(['gap', 'instructions'], gaps.map((g) => [g, c.gapHistogram[String(g)]!])),
    '',
    '## Use cases: seeds vs pool vs kept',
    topRows([r.distributions.seeds.use_cases, r.distributions.pool.use_cases, r.distributions.kept.use_cases], ['seeds', 'pool', 'kept']),
    '',
    '## Skills: seeds vs pool vs kept',
    topRows([r.distributions.seeds.skills, r.distributions.pool.skills, r.distributions.kept.skills], ['seeds', 'pool', 'kept']),
    '',
    '## LLM calls and tokens per stage and role',
    table(['stage/role', 'calls', 'prompt tokens', 'completion tokens'], usageRows),
    '',
    `Total: ${r.usage.total.calls} calls, ${r.usage.total.prompt_tokens} prompt + ${r.usage.total.completion_tokens} completion tokens.`,
    '',
    '## Failures',
    r.failures.length ? table(['item', 'stage', 'reason'], r.failures.map((f) => [f.item, f.stage, f.reason.replace(/\|/g, '\\|').slice(0, 300)])) : 'None.',
    '',
  ].join('\n');
}
