import { money, table } from '../report/markdown';
import type { Plan, PlanCell } from './estimate';
import { stages } from './figures';

/** The plan as a human reads it in a terminal: what will be called, what it costs, how long. */
export function renderPlan(plan: Plan): string {
  const i = plan.inputs;
  const cost = (c: PlanCell) =>
    c.cost_usd === null
      ? 'no price'
      : `${money(c.cost_usd)}${c.unpriced_roles ? ` + ${c.unpriced_roles.join(', ')} (no price)` : ''}`;
  const row = (name: string, c: PlanCell) => [
    name,
    int(c.calls),
    int(c.prompt_tokens),
    int(c.completion_tokens),
    cost(c),
  ];
  const header = ['', 'calls', 'prompt tokens', 'completion tokens', 'cost'];
  const lines = [
    `codeclm plan: ${i.seeds} seeds (${int(i.seed_chars)} characters) -> size ${i.size}, pool ${i.pool_size}, ` +
      `${i.max_iterations} iterations, theta ${i.theta}, decodeBatch ${i.decode_batch}`,
    `figures: ${plan.figures.label}`,
    `  keep rate per iteration: ${plan.figures.keep_rates.map((k) => `${(k * 100).toFixed(0)}%`).join(', ')}; ` +
      `judged ${plan.loop.judged_per_instruction.toFixed(2)} times per instruction; ` +
      `kept with probability ${(plan.loop.keep_probability * 100).toFixed(1)}%`,
    `  instructions: ${int(plan.loop.instructions)} in ${plan.loop.rounds.length} round(s) ` +
      `(${plan.loop.rounds.map((r) => r.instructions).join(' + ')}), expected kept ${int(plan.loop.expected_kept)}`,
    '',
    'per stage',
    table(header, [...stages.map((s) => row(s, plan.stages[s])), row('total', plan.total)]),
    '',
    'per role',
    table(
      header,
      (['strong', 'target', 'judge'] as const).map((r) => row(`${r} (${i.models[r]})`, plan.roles[r])),
    ),
    '',
    'wall time',
    table(
      [
        'roles (rate-limit bucket)',
        'calls',
        'tokens',
        'rpm',
        'tpm',
        'minutes at rpm',
        'minutes at tpm',
        'binding',
      ],
      plan.wall.buckets.map((b) => [
        `${b.roles.join('+')} (${b.model})`,
        int(b.calls),
        int(b.tokens),
        b.rpm ?? 'no limit configured',
        b.tpm ?? 'no limit configured',
        b.minutes_at_rpm ?? '-',
        b.minutes_at_tpm ?? '-',
        b.binding === 'none' ? 'no limit configured' : b.binding,
      ]),
    ),
    `expected wall time: ${duration(plan.wall.seconds)}, set by ${plan.wall.binding}` +
      (plan.wall.binding.startsWith('concurrency')
        ? ''
        : `; at concurrency alone: ${duration(plan.wall.concurrency_seconds)} (${plan.wall.assumption})`),
    '',
  ];
  return lines.join('\n');
}

function int(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
