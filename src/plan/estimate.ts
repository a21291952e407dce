import type { ResolvedConfig, RoleName } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { computeCost, pricesOf } from '../report/cost';
import { shares, topUpAllocation, topUpSize } from '../workflows/allocation';
import { CHARS_PER_TOKEN, stageRoles, stages, type Figures, type Stage } from './figures';

/**
 * A run's plan before any LLM call: the method's structure (docs/method.md; src/workflows/pipeline.ts)
 * times the measured figures (./figures.ts). Structure: encode one call per seed; per round, the
 * size shared over the pool like the run does it (src/workflows/allocation.ts), rubrics once per
 * entry that gets a share, decode ceil(share / decodeBatch) calls per entry; per instruction and
 * iteration reached, one improve (from iteration 2), two answers and two judge calls. Iteration i
 * is reached with probability prod_{j<i}(1 - keep_j); kept pairs short of the size start top-up
 * rounds sized the way the run sizes them.
 */
export interface PlanCell {
  calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** null: no price configured for the role(s). */
  cost_usd: number | null;
  /** Roles in this cell without a price while others have one: cost_usd leaves them out. */
  unpriced_roles?: string[];
}

export interface PlanRound {
  round: number;
  instructions: number;
  entries: number;
  decode_calls: number;
  new_rubrics: number;
}

export interface RateBucket {
  roles: RoleName[];
  model: string;
  rpm: number | null;
  tpm: number | null;
  calls: number;
  tokens: number;
  minutes_at_rpm: number | null;
  minutes_at_tpm: number | null;
  /** Which limit sets the bucket's pace, or none configured. */
  binding: 'rpm' | 'tpm' | 'none';
}

export interface Plan {
  version: 1;
  created_at: string;
  run_id?: string;
  figures: {
    source: Figures['source'];
    label: string;
    runs: number;
    keep_rates: number[];
    calls_per_structural_call: Record<Stage, number>;
  };
  inputs: {
    seeds_file?: string;
    seeds: number;
    seed_chars: number;
    size: number;
    pool_size: number;
    decode_batch: number;
    max_iterations: number;
    theta: number;
    concurrency: number;
    top_up_rounds: number;
    models: Record<RoleName, string>;
  };
  loop: {
    rounds: PlanRound[];
    instructions: number;
    judged_per_instruction: number;
    keep_probability: number;
    expected_kept: number;
  };
  stages: Record<Stage, PlanCell>;
  roles: Record<RoleName, PlanCell>;
  per_stage_role: Record<string, PlanCell>;
  total: PlanCell & { tokens: number };
  wall: {
    seconds: number;
    /** What sets the wall time: a role's rate limit, or concurrency at an assumed latency. */
    binding: string;
    buckets: RateBucket[];
    /** The assumption behind the concurrency-bound estimate (always computed, shown when it binds). */
    assumption: string;
    concurrency_seconds: number;
  };
}

export interface PlanInput {
  seeds: { count: number; chars: number; file?: string };
  config: ResolvedConfig;
  figures: Figures;
  runId?: string;
  now?: Date;
}

/** Seconds an LLM call takes when nothing was measured (an assumption, printed as such). */
export const ASSUMED_CALL_SECONDS = 2;

export function estimatePlan(input: PlanInput): Plan {
  const { config, figures } = input;
  const { method, limits } = config;
  const M = method.maxIterations;
  const keep = (i: number) => figures.keepRates[Math.min(i, figures.keepRates.length - 1)] ?? 0.5;

  // The loop of one instruction: iterations reached, improves, kept probability.
  let reach = 1;
  let judgedPer = 0;
  let improvesPer = 0;
  let keptPer = 0;
  for (let i = 0; i < M; i++) {
    judgedPer += reach;
    if (i > 0) improvesPer += reach;
    keptPer += reach * keep(i);
    reach *= 1 - keep(i);
  }

  // Rounds, as the run sizes them (pipeline.ts, "generate").
  const pool = method.poolSize;
  const rounds: PlanRound[] = [];
  const withRubrics = new Set<number>();
  const yieldPer = 1 - figures.duplicateRate;
  let roundTotal = limits.size;
  let kept = 0;
  let judgedItems = 0;
  let decodedInstructions = 0;
  for (let round = 1; ; round++) {
    const allocation = round === 1 ? shares(pool, roundTotal, 0) : topUpAllocation(pool, roundTotal, round);
    let entries = 0;
    let decodeCalls = 0;
    let newRubrics = 0;
    for (const [entry, count] of allocation.entries()) {
      if (count <= 0) continue;
      entries++;
      decodeCalls += Math.ceil(count / method.decodeBatch);
      if (!withRubrics.has(entry)) {
        withRubrics.add(entry);
        newRubrics++;
      }
    }
    decodedInstructions += roundTotal;
    const instructions = roundTotal * yieldPer;
    rounds.push({ round, instructions, entries, decode_calls: decodeCalls, new_rubrics: newRubrics });
    kept += instructions * keptPer;
    judgedItems += instructions;
    // The run tops up by whole pairs; an expected shortfall under half a pair is no shortfall.
    const deficit = Math.round(limits.size - kept);
    if (deficit <= 0 || round > limits.topUpRounds) break;
    roundTotal = topUpSize(deficit, kept, judgedItems);
  }
  const instructions = rounds.reduce((a, r) => a + r.instructions, 0);

  // Calls per stage: structure times repairs.
  const f = figures.callsPerStructuralCall;
  const structural: Record<Stage, number> = {
    encode: input.seeds.count,
    rubrics: rounds.reduce((a, r) => a + r.new_rubrics, 0),
    decode: rounds.reduce((a, r) => a + r.decode_calls, 0),
    improve: instructions * improvesPer,
    answer: 2 * instructions * judgedPer,
    judge: 2 * instructions * judgedPer,
  };

  const usage: Usage = {};
  for (const stage of stages) {
    const calls = structural[stage] * f[stage];
    const roles = stageRoles[stage];
    for (const role of roles) {
      const key = `${stage}/${role}`;
      const roleCalls = calls / roles.length;
      const per = figures.tokens[key] ??
        figures.tokens[`${stage}/${roles[0]}`] ?? { prompt: 0, completion: 0 };
      const maxTokens = config.roles[role].maxTokens;
      let prompt = roleCalls * per.prompt;
      let completion = roleCalls * Math.min(per.completion, maxTokens);
      if (stage === 'encode')
        prompt = roleCalls * figures.encodePromptOverhead + (f.encode * input.seeds.chars) / CHARS_PER_TOKEN;
      if (stage === 'decode')
        completion = Math.min(decodedInstructions * f.decode * per.completion, roleCalls * maxTokens);
      usage[key] = { calls: roleCalls, promptTokens: prompt, completionTokens: completion };
    }
  }

  // Each stage/role cell is rounded once; stages, roles and the total are sums of those, so every
  // table adds up.
  for (const u of Object.values(usage)) {
    u.calls = Math.round(u.calls);
    u.promptTokens = Math.round(u.promptTokens);
    u.completionTokens = Math.round(u.completionTokens);
  }
  const cost = computeCost(usage, pricesOf(config));
  const cell = (keys: string[]): PlanCell => {
    const c: PlanCell = { calls: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: null };
    const unpriced = new Set<string>();
    for (const k of keys) {
      const u = usage[k];
      if (!u) continue;
      c.calls += u.calls;
      c.prompt_tokens += u.promptTokens;
      c.completion_tokens += u.completionTokens;
      const price = cost?.per_stage_role_usd[k];
      if (price !== undefined) c.cost_usd = round6((c.cost_usd ?? 0) + price);
      else unpriced.add(k.slice(k.indexOf('/') + 1));
    }
    if (c.cost_usd !== null && unpriced.size) c.unpriced_roles = [...unpriced].sort();
    return c;
  };
  const keys = Object.keys(usage);
  const byStage = Object.fromEntries(
    stages.map((s) => [s, cell(keys.filter((k) => k.startsWith(`${s}/`)))]),
  ) as Record<Stage, PlanCell>;
  const roleNames: RoleName[] = ['strong', 'target', 'judge'];
  const byRole = Object.fromEntries(
    roleNames.map((r) => [r, cell(keys.filter((k) => k.endsWith(`/${r}`)))]),
  ) as Record<RoleName, PlanCell>;
  const perStageRole = Object.fromEntries(keys.map((k) => [k, cell([k])]));
  const total = cell(keys);

  const wall = wallTime(config, byRole, structural, figures);
  return {
    version: 1,
    created_at: (input.now ?? new Date()).toISOString(),
    ...(input.runId ? { run_id: input.runId } : {}),
    figures: {
      source: figures.source,
      label: figures.label,
      runs: figures.runs,
      keep_rates: figures.keepRates.map(round4),
      calls_per_structural_call: Object.fromEntries(stages.map((s) => [s, round4(f[s])])) as Record<
        Stage,
        number
      >,
    },
    inputs: {
      ...(input.seeds.file ? { seeds_file: input.seeds.file } : {}),
      seeds: input.seeds.count,
      seed_chars: input.seeds.chars,
      size: limits.size,
      pool_size: pool,
      decode_batch: method.decodeBatch,
      max_iterations: M,
      theta: method.theta,
      concurrency: limits.concurrency,
      top_up_rounds: limits.topUpRounds,
      models: {
        strong: config.roles.strong.model,
        target: config.roles.target.model,
        judge: config.roles.judge.model,
      },
    },
    loop: {
      rounds: rounds.map((r) => ({ ...r, instructions: Math.round(r.instructions) })),
      instructions: Math.round(instructions),
      judged_per_instruction: round4(judgedPer),
      keep_probability: round4(keptPer),
      expected_kept: Math.round(kept),
    },
    stages: byStage,
    roles: byRole,
    per_stage_role: perStageRole,
    total: { ...total, tokens: total.prompt_tokens + total.completion_tokens },
    wall,
  };
}

/**
 * Wall time: each rate-limit bucket (roles on the same endpoint, key variable and model share one,
 * as src/llm/limiter.ts counts them) needs calls/rpm and tokens/tpm minutes, whichever is longer.
 * Without limits the pace is concurrency's: LLM steps (the two answers, and the two judge orders,
 * run at once) times an assumed call latency over the instructions in flight.
 */
function wallTime(
  config: ResolvedConfig,
  byRole: Record<RoleName, PlanCell>,
  structural: Record<Stage, number>,
  figures: Figures,
): Plan['wall'] {
  const buckets = new Map<string, RateBucket>();
  for (const role of ['strong', 'target', 'judge'] as const) {
    const r = config.roles[role];
    const key = `${r.baseURL}\u0000${r.apiKeyEnv}\u0000${r.model}`;
    const b = buckets.get(key) ?? {
      roles: [],
      model: r.model,
      rpm: null,
      tpm: null,
      calls: 0,
      tokens: 0,
      minutes_at_rpm: null,
      minutes_at_tpm: null,
      binding: 'none' as const,
    };
    b.roles.push(role);
    if (r.rpm !== undefined) b.rpm = b.rpm === null ? r.rpm : Math.min(b.rpm, r.rpm);
    if (r.tpm !== undefined) b.tpm = b.tpm === null ? r.tpm : Math.min(b.tpm, r.tpm);
    b.calls += byRole[role].calls;
    b.tokens += byRole[role].prompt_tokens + byRole[role].completion_tokens;
    buckets.set(key, b);
  }
  let limitSeconds = 0;
  let limitBinding = '';
  for (const b of buckets.values()) {
    b.minutes_at_rpm = b.rpm ? round4(b.calls / b.rpm) : null;
    b.minutes_at_tpm = b.tpm ? round4(b.tokens / b.tpm) : null;
    const rpmMin = b.minutes_at_rpm ?? 0;
    const tpmMin = b.minutes_at_tpm ?? 0;
    b.binding = b.rpm === null && b.tpm === null ? 'none' : rpmMin >= tpmMin ? 'rpm' : 'tpm';
    const seconds = Math.max(rpmMin, tpmMin) * 60;
    if (b.binding !== 'none' && seconds > limitSeconds) {
      limitSeconds = seconds;
      limitBinding = `${b.binding} of ${b.roles.join('+')} (${b.model})`;
    }
  }
  const f = figures.callsPerStructuralCall;
  const steps =
    structural.encode * f.encode +
    structural.rubrics * f.rubrics +
    structural.decode * f.decode +
    structural.improve * f.improve +
    (structural.answer * f.answer) / 2 +
    (structural.judge * f.judge) / 2;
  const concurrency = config.limits.concurrency;
  const concurrencySeconds = (steps * ASSUMED_CALL_SECONDS) / concurrency;
  const assumption = `assumed ${ASSUMED_CALL_SECONDS} s per LLM call with limits.concurrency ${concurrency} instructions in flight (latency not measured)`;
  const seconds = Math.max(limitSeconds, concurrencySeconds);
  return {
    seconds: Math.round(seconds),
    binding: limitSeconds >= concurrencySeconds ? limitBinding : `concurrency (${assumption})`,
    buckets: [...buckets.values()],
    assumption,
    concurrency_seconds: Math.round(concurrencySeconds),
  };
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
