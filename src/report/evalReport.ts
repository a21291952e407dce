import type { ConfigSummary } from '../config/describe';
import type { Usage } from '../schemas/records';
import { usageTotals } from '../schemas/records';
import type { EvalFailureRecord, EvalRecord } from '../activities/eval';
import { summariseCrr, type CrrCell, type CrrSummary } from './crr';
import type { Cost } from './cost';
import { money, percent, table, usageRows } from './markdown';
import { stackedShareChart } from './svg';

/** eval-report.json: the CRR of one evaluation, overall and per category, and how it was obtained. */
export interface EvalReport {
  eval_id: string;
  state: string;
  instructions_file: string;
  /** Instructions in the set (after skipped lines). */
  instructions: number;
  judged: number;
  failed: number;
  models: { target: string; strong: string; judge: string };
  protocol: string;
  crr: CrrSummary;
  usage: {
    per_stage_role: Usage;
    total: { calls: number; prompt_tokens: number; completion_tokens: number };
    cost: Cost | null;
  };
  wall_seconds: number;
  failures: EvalFailureRecord[];
  skipped: { origin: string; reason: string }[];
  config: ConfigSummary;
}

export const EVAL_PROTOCOL =
  'Target and strong model answer each instruction; the judge scores both answers 1-10 in one pairwise prompt, ' +
  'twice, with the order swapped, at temperature 0. An answer wins only if it scores higher in both orders; ' +
  'anything else is a tie. CRR = (target wins + ties) / judged. Failed items are listed, not counted.';

export function buildEvalReport(input: {
  evalId: string;
  state: string;
  instructionsFile: string;
  instructions: number;
  records: EvalRecord[];
  failures: EvalFailureRecord[];
  skipped: { origin: string; reason: string }[];
  config: ConfigSummary;
  usage: Usage;
  cost: Cost | null;
  wallSeconds: number;
}): EvalReport {
  const total = usageTotals(input.usage);
  return {
    eval_id: input.evalId,
    state: input.state,
    instructions_file: input.instructionsFile,
    instructions: input.instructions,
    judged: input.records.length,
    failed: input.failures.length,
    models: {
      target: input.config.roles.target.model,
      strong: input.config.roles.strong.model,
      judge: input.config.roles.judge.model,
    },
    protocol: EVAL_PROTOCOL,
    crr: summariseCrr(input.records.map((r) => ({ category: r.category, verdict: r.verdict }))),
    usage: {
      per_stage_role: input.usage,
      total: {
        calls: total.calls,
        prompt_tokens: total.promptTokens,
        completion_tokens: total.completionTokens,
      },
      cost: input.cost,
    },
    wall_seconds: Math.round(input.wallSeconds * 10) / 10,
    failures: input.failures,
    skipped: input.skipped,
    config: input.config,
  };
}

function crrRow(name: string, c: CrrCell): (string | number)[] {
  const share = (n: number) => (c.total ? `${n} (${percent(n / c.total, 1)})` : String(n));
  return [
    name,
    c.total,
    share(c.target_wins),
    share(c.ties),
    share(c.strong_wins),
    c.crr_percent === null ? 'n/a' : `**${c.crr_percent.toFixed(2)}**`,
  ];
}

export function crrTable(crr: CrrSummary): string {
  const rows = Object.entries(crr.by_category).map(([k, c]) => crrRow(k, c));
  rows.push(crrRow(rows.length ? '**all**' : 'all', crr.overall));
  return table(['set', 'judged', 'target wins', 'ties', 'strong wins', 'CRR %'], rows);
}

export function renderEvalSvg(r: EvalReport): string {
  const rows = Object.entries(r.crr.by_category).map(([label, c]) => ({
    label,
    parts: [c.target_wins, c.ties, c.strong_wins],
  }));
  const o = r.crr.overall;
  rows.push({ label: 'all', parts: [o.target_wins, o.ties, o.strong_wins] });
  return stackedShareChart({
    title: `Target (${r.models.target}) vs strong (${r.models.strong}): CRR ${o.crr_percent === null ? 'n/a' : `${o.crr_percent.toFixed(2)}%`}`,
    parts: [
      { name: 'target wins', color: '#59a14f' },
      { name: 'tie', color: '#bab0ac' },
      { name: 'strong wins', color: '#e15759' },
    ],
    rows,
  });
}

export function renderEvalMarkdown(r: EvalReport, chartFile?: string): string {
  const o = r.crr.overall;
  const usageTableRows = usageRows(r.usage.per_stage_role, (k) => [
    r.usage.cost?.per_stage_role_usd[k] !== undefined ? money(r.usage.cost.per_stage_role_usd[k]!) : '',
  ]);
  return [
    `# codeclm eval ${r.eval_id}`,
    '',
    `Capacity Recovery Ratio of **${r.models.target}** (target) against **${r.models.strong}** (strong), judged by **${r.models.judge}**, on \`${r.instructions_file}\`.`,
    '',
    `**CRR = ${o.crr_percent === null ? 'n/a' : `${o.crr_percent.toFixed(2)}%`}** ` +
      `(${o.target_wins} target wins + ${o.ties} ties of ${o.total} judged; ${o.strong_wins} strong wins). ` +
      `${r.instructions} instructions, ${r.judged} judged, ${r.failed} failed; ${r.wall_seconds} s; state ${r.state}.`,
    '',
    '## Wins, ties and losses',
    '',
    crrTable(r.crr),
    '',
    ...(chartFile ? [`![wins, ties and losses](${chartFile})`, ''] : []),
    '## Protocol',
    '',
    r.protocol,
    '',
    '## LLM calls and tokens',
    '',
    table(['stage/role', 'calls', 'prompt tokens', 'completion tokens', 'cost'], usageTableRows),
    '',
    `Total: ${r.usage.total.calls} calls, ${r.usage.total.prompt_tokens} prompt + ${r.usage.total.completion_tokens} completion tokens` +
      (r.usage.cost
        ? `, ${money(r.usage.cost.total_usd)}${r.usage.cost.unpriced_roles.length ? ` (no price for: ${r.usage.cost.unpriced_roles.join(', ')})` : ''}.`
        : '.'),
    '',
    '## Failed instructions',
    '',
    r.failures.length
      ? table(
          ['#', 'id', 'category', 'stage', 'reason'],
          r.failures.map((f) => [f.index, f.id, f.category, f.stage, f.reason]),
        )
      : 'None.',
    '',
    ...(r.skipped.length
      ? [
          '## Skipped lines of the instruction file',
          '',
          table(
            ['where', 'reason'],
            r.skipped.map((s) => [s.origin, s.reason]),
          ),
          '',
        ]
      : []),
  ].join('\n');
}
