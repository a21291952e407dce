import type { ChartLinks, Report } from './build';
import { distributionRows } from './build';
import { barChart, hBarChart } from './svg';

/** The run report's charts: one SVG document each, shared by report.html (inline) and report.md (files). */
export interface Chart {
  key: keyof ChartLinks;
  /** File name under the out dir's charts/ folder. */
  file: string;
  title: string;
  svg: string;
}

const pct = (n: number) => `${(n * 100).toFixed(n < 0.1 && n > 0 ? 1 : 0)}%`;

function divergenceNote(x: { seeds_pool: number | null; seeds_kept: number | null }): string {
  const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
  return `JSD seeds-pool ${f(x.seeds_pool)}, seeds-kept ${f(x.seeds_kept)}`;
}

export function reportCharts(r: Report): Chart[] {
  const c = r.counts;
  const charts: Chart[] = [];
  const add = (key: Chart['key'], file: string, title: string, svg: string) =>
    charts.push({ key, file, title, svg });

  add(
    'counts',
    'counts.svg',
    'Counts per stage',
    barChart({
      title: 'Counts per stage',
      categories: ['seeds', 'encoded', 'pool', 'instructions', 'kept', 'dropped', 'failed'],
      series: [
        { name: 'count', values: [c.seeds, c.encoded, c.pool, c.instructions, c.kept, c.dropped, c.failed] },
      ],
    }),
  );

  const hasJudged = r.iterations.some((i) => i.judged !== null);
  add(
    'iterations',
    'iterations.svg',
    'Kept and dropped per Self-Rubrics iteration',
    barChart({
      title: 'Kept and dropped per Self-Rubrics iteration',
      categories: r.iterations.map((i) => `iteration ${i.iteration}`),
      series: [
        ...(hasJudged
          ? [{ name: 'judged', values: r.iterations.map((i) => i.judged ?? 0), color: '#9aa7b8' }]
          : []),
        { name: 'kept', values: r.iterations.map((i) => i.kept), color: '#59a14f' },
        ...(hasJudged
          ? [
              {
                name: 'too easy, improved again',
                values: r.iterations.map((i) => i.too_easy ?? 0),
                color: '#edc948',
              },
            ]
          : []),
        { name: 'dropped at cap', values: r.iterations.map((i) => i.dropped), color: '#e15759' },
      ],
    }),
  );

  const gapKeys = Object.keys(c.gapHistogram).map(Number);
  const lo = Math.min(-9, ...gapKeys);
  const hi = Math.max(9, ...gapKeys);
  const gaps = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const theta = r.config?.method.theta;
  add(
    'gaps',
    'gap-histogram.svg',
    'Score gap histogram',
    barChart({
      title: `Score gap S(strong) - S(target), every judged iteration${theta !== undefined ? ` (kept when |gap| > ${theta})` : ''}`,
      categories: gaps.map(String),
      series: [
        {
          name: 'judgements',
          values: gaps.map((g) => c.gapHistogram[String(g)] ?? 0),
          color: '#4e79a7',
        },
      ],
      xLabel: 'gap, rounded to whole points',
      yLabel: 'judgements',
    }),
  );

  const dist = (key: 'use_cases' | 'skills', limit: number) => {
    const rows = distributionRows(
      [r.distributions.seeds[key], r.distributions.pool[key], r.distributions.kept[key]],
      limit,
    );
    return {
      categories: rows.map((x) => x.key),
      series: [
        { name: 'seeds', values: rows.map((x) => x.shares[0]!), color: '#4e79a7' },
        { name: 'pool', values: rows.map((x) => x.shares[1]!), color: '#f28e2b' },
        { name: 'kept', values: rows.map((x) => x.shares[2]!), color: '#59a14f' },
      ],
    };
  };
  add(
    'useCases',
    'use-cases.svg',
    'Use cases',
    hBarChart({
      title: `Use cases, share of each set (${divergenceNote(r.divergence.use_cases)})`,
      ...dist('use_cases', 12),
      format: pct,
    }),
  );
  add(
    'skills',
    'skills.svg',
    'Skills',
    hBarChart({
      title: `Skills, share of each set (${divergenceNote(r.divergence.skills)})`,
      ...dist('skills', 15),
      format: pct,
    }),
  );

  const usage = Object.entries(r.usage.per_stage_role).sort();
  add(
    'tokens',
    'tokens.svg',
    'Tokens per stage and role',
    hBarChart({
      title: 'Tokens per stage and role',
      categories: usage.map(([k, u]) => `${k} (${u.calls} calls)`),
      series: [
        { name: 'prompt tokens', values: usage.map(([, u]) => u.promptTokens), color: '#76b7b2' },
        { name: 'completion tokens', values: usage.map(([, u]) => u.completionTokens), color: '#b07aa1' },
      ],
      labelWidth: 200,
    }),
  );
  return charts;
}
