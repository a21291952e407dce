import type { Report } from './build';
import {
  distributionRows,
  leftOverLines,
  planCacheNote,
  planComparisonTable,
  planNote,
  stageCountsTable,
} from './build';
import type { Chart } from './charts';
import { money } from './markdown';
import { esc } from './svg';
import { hasRemovedSection, removedParts } from './removed';

/**
 * report.html: one self-contained page (inline CSS and inline SVG, no scripts, nothing fetched)
 * that opens from disk in any browser and can be mailed or attached as it is.
 */

type Cell = string | number | null | undefined;

function htmlTable(header: string[], rows: Cell[][], cls = ''): string {
  const th = header.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((v) => `<td>${esc(v === null || v === undefined ? '' : String(v))}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function figure(chart: Chart | undefined): string {
  return chart ? `<figure class="chart">${chart.svg}</figure>` : '';
}

const CSS = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 32px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin: 0 0 18px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid #e1e4e8; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 20px; } .card span { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #e1e4e8; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } td.num, table.num td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 10px 0 18px; overflow-x: auto; } figure.chart svg { max-width: 100%; height: auto; }
.state-completed { color: #2e7d32; } .state-failed, .state-cancelled { color: #c62828; } .state-paused { color: #b26a00; }
.note { color: #555; font-size: 13px; }
`;

export function renderReportHtml(r: Report, charts: Chart[]): string {
  const c = r.counts;
  const chart = (key: Chart['key']) => figure(charts.find((x) => x.key === key));
  const cost = r.usage.cost;
  const js = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  const roles = r.config?.roles;
  const card = (value: Cell, label: string) =>
    `<div class="card"><b>${esc(String(value ?? ''))}</b><span>${esc(label)}</span></div>`;
  const distTable = (key: 'use_cases' | 'skills') =>
    htmlTable(
      [key === 'use_cases' ? 'use case' : 'skill', 'seeds', 'pool', 'kept'],
      distributionRows(
        [r.distributions.seeds[key], r.distributions.pool[key], r.distributions.kept[key]],
        25,
      ).map((row) => [row.key, ...row.counts.map((n, i) => `${n} (${(row.shares[i]! * 100).toFixed(1)}%)`)]),
      'num',
    );
  const method = r.config?.method;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>codeclm run ${esc(r.run_id)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>codeclm run ${esc(r.run_id)}</h1>
<p class="sub">State <b class="state-${esc(r.state)}">${esc(r.state)}</b> · started ${esc(r.started_at)}${r.finished_at ? ` · finished ${esc(r.finished_at)}` : ''} · out dir <code>${esc(r.out_dir)}</code></p>
<p class="note">The pairs are in <a href="dataset.jsonl">dataset.jsonl</a>; every judged instruction, kept or not, is in <a href="viewer.html">viewer.html</a>.</p>
<div class="cards">
${card(`${c.kept} / ${r.target_size}`, 'kept pairs / target size')}
${card(c.seeds, 'seeds')}
${card(c.instructions, 'instructions generated')}
${card(c.failed + c.encodeFailed, 'failed items')}
${card(`${r.wall_seconds} s`, 'wall time')}
${card(r.usage.total.calls, 'LLM calls')}
${card(r.usage.total.prompt_tokens + r.usage.total.completion_tokens, 'tokens')}
${card(cost ? money(cost.total_usd) : 'n/a', cost ? 'cost' : 'cost (no prices set)')}
${cost && cost.batch_usd > 0 ? card(money(cost.all_online_usd), `all online (batch part ${money(cost.batch_usd)})`) : ''}
</div>
${
  roles
    ? `<h2>Models</h2>\n${htmlTable(
        ['role', 'model', 'endpoint', 'temperature', 'max tokens'],
        (['strong', 'target', 'judge'] as const).map((k) => [
          k,
          roles[k].model,
          roles[k].endpoint,
          roles[k].temperature ?? 'stage default',
          roles[k].maxTokens,
        ]),
      )}`
    : ''
}
${
  method
    ? `<p class="note">Method: pool ${method.poolSize}, ≤${method.skillsPerSeed} skills per seed, ${method.skillsPerEntryMin}-${method.skillsPerEntryMax} skills per pool entry (${esc(method.skillWeighting)}), ${method.rubrics} rubrics, ≤${method.maxIterations} iterations, theta ${method.theta}, run seed ${method.runSeed}; temperatures decode ${method.decodeTemperature}, improve ${method.improveTemperature}, answer ${method.answerTemperature}, judge ${method.judgeTemperature}.</p>`
    : ''
}
<h2>Counts per stage</h2>
${htmlTable(...stageCountsTable(c), 'num')}
<p class="note">Every generated instruction ends kept, dropped or failed: ${c.kept} + ${c.dropped} + ${c.failed} = ${c.generated}.</p>
${leftOverLines(r.state, c)
  .map((line) => `<p class="note">${esc(line)}</p>`)
  .join('\n')}
${removedHtml(r)}
${chart('counts')}
<h2>Kept and dropped per iteration</h2>
${htmlTable(
  ['iteration', 'judged', 'kept', 'too easy (improved again)', 'dropped at cap'],
  r.iterations.map((i) => [i.iteration, i.judged ?? 'n/a', i.kept, i.too_easy ?? 'n/a', i.dropped]),
  'num',
)}
<p class="note">Kept with the target's answer (gap &lt; -theta): ${c.keptFromTarget}.</p>
${chart('iterations')}
<h2>Score gap</h2>
${chart('gaps')}
<h2>Metadata: seeds vs pool vs kept</h2>
${htmlTable(
  ['Jensen-Shannon divergence (bits)', 'seeds ↔ pool', 'seeds ↔ kept'],
  [
    ['use cases', js(r.divergence.use_cases.seeds_pool), js(r.divergence.use_cases.seeds_kept)],
    ['skills', js(r.divergence.skills.seeds_pool), js(r.divergence.skills.seeds_kept)],
  ],
  'num',
)}
<p class="note">0 means the same distribution as the seeds, 1 means nothing in common. CodecLM's pool is meant to stay close to the seeds.</p>
${chart('useCases')}
${distTable('use_cases')}
${chart('skills')}
${distTable('skills')}
<h2>LLM calls and tokens</h2>
${htmlTable(
  ['stage/role', 'calls', 'prompt tokens', 'completion tokens', ...(cost ? ['cost'] : [])],
  Object.entries(r.usage.per_stage_role)
    .sort()
    .map(([k, u]) => [
      k,
      u.calls,
      u.promptTokens,
      u.completionTokens,
      ...(cost
        ? [cost.per_stage_role_usd[k] !== undefined ? money(cost.per_stage_role_usd[k]!) : 'no price']
        : []),
    ]),
  'num',
)}
${htmlTable(
  ['role', 'calls', 'prompt tokens', 'completion tokens', ...(cost ? ['cost'] : [])],
  Object.entries(r.usage.per_role)
    .sort()
    .map(([k, u]) => [
      k,
      u.calls,
      u.promptTokens,
      u.completionTokens,
      ...(cost ? [cost.per_role_usd[k] !== undefined ? money(cost.per_role_usd[k]!) : 'no price'] : []),
    ]),
  'num',
)}
${chart('tokens')}
${planHtml(r)}
<h2>Failures</h2>
${
  r.failures.length
    ? `${htmlTable(['stage', 'failures listed'], Object.entries(r.failures_by_stage))}\n${htmlTable(
        ['item', 'stage', 'reason'],
        r.failures.map((f) => [f.item, f.stage, f.reason]),
      )}`
    : '<p>None.</p>'
}
</main>
</body>
</html>
`;
}

/** Instructions removed after decode (duplicates, benchmark overlap), by reason with examples. */
function removedHtml(r: Report): string {
  const s = r.removed;
  if (!hasRemovedSection(s)) return '';
  const p = removedParts(s, r.counts);
  return [
    '<h2>Removed after decode</h2>',
    `<p class="note">${esc(p.summary)}</p>`,
    htmlTable(...p.reasons),
    s.examples.length ? htmlTable(...p.examples) : '',
    p.benchmarks ? `<p class="note">${esc(p.benchmarks)}</p>` : '',
    p.list ? `<p class="note">${esc(p.list)}</p>` : '',
  ].join('\n');
}

/** The plan made before the run (plan.json) against what the run used. */
function planHtml(r: Report): string {
  const p = r.plan_vs_actual;
  if (!p) return '';
  return [
    '<h2>Plan vs actual</h2>',
    `<p class="note">${esc(planNote(p))}</p>`,
    htmlTable(...planComparisonTable(p), 'num'),
    ...planCacheNote(p).map((line) => (line ? `<p class="note">${esc(line)}</p>` : '')),
  ].join('\n');
}
