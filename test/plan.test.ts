import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { configSchema, type ResolvedConfig } from '../src/schemas/config';
import { estimatePlan, type Plan } from '../src/plan/estimate';
import { BENCH_FIGURES, type Figures } from '../src/plan/figures';
import { figuresFromRuns, matchingRuns, type HistoryEntry } from '../src/plan/history';
import { renderPlan } from '../src/plan/render';
import { runCli, type CliResult } from './helpers/cli';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';
import { freePort } from '../src/temporal/devServer';
import type { Report } from '../src/report/build';

/** `codeclm plan` and `run --dry-run`: the model of the method, the figures, and the CLI. */
const seeds = path.join(__dirname, '..', 'examples', 'seeds.jsonl');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, {
    env: { CODECLM_HOME: tmpDir('codeclm-plan-cli-home-'), OPENAI_API_KEY: '', ...env },
    cwd: tmpDir('codeclm-plan-cli-'),
  });
}

function config(
  patch: {
    method?: Partial<ResolvedConfig['method']>;
    limits?: Partial<ResolvedConfig['limits']>;
    roles?: Partial<Record<'strong' | 'target' | 'judge', Partial<ResolvedConfig['roles']['strong']>>>;
  } = {},
): ResolvedConfig {
  const base = configSchema.parse({});
  const role = (name: 'strong' | 'target' | 'judge', model: string) => ({
    ...base.roles.strong,
    baseURL: 'https://api.example.com/v1',
    model,
    ...patch.roles?.[name],
  });
  return {
    roles: { strong: role('strong', 'big'), target: role('target', 'small'), judge: role('judge', 'big') },
    method: { ...base.method, ...patch.method },
    limits: { ...base.limits, ...patch.limits },
  };
}

const flat = (keepRates: number[]): Figures => ({
  ...BENCH_FIGURES,
  keepRates,
  tokens: Object.fromEntries(
    Object.keys(BENCH_FIGURES.tokens).map((k) => [k, { prompt: 100, completion: 10 }]),
  ),
  encodePromptOverhead: 100,
});

test('the method structure: encode per seed, rubrics per used entry, decode per batch, 5 calls per judged iteration', () => {
  // Everything kept at iteration 1: no improve, no top-up.
  const plan = estimatePlan({
    seeds: { count: 30, chars: 1200 },
    config: config({ method: { poolSize: 10, decodeBatch: 4 }, limits: { size: 50 } }),
    figures: flat([1]),
  });
  expect(plan.stages.encode.calls).toBe(30);
  expect(plan.stages.rubrics.calls).toBe(10);
  expect(plan.stages.decode.calls).toBe(10 * Math.ceil(5 / 4));
  expect(plan.stages.improve.calls).toBe(0);
  expect(plan.stages.answer.calls).toBe(100);
  expect(plan.stages.judge.calls).toBe(100);
  expect(plan.total.calls).toBe(30 + 10 + 20 + 200);
  expect(plan.loop.rounds).toHaveLength(1);
  // Encode's prompt grows with the seeds' size: 100 per call plus 1200 characters / 4.
  expect(plan.stages.encode.prompt_tokens).toBe(30 * 100 + 300);

  // A size smaller than the pool uses only `size` entries.
  const small = estimatePlan({
    seeds: { count: 5, chars: 100 },
    config: config({ method: { poolSize: 200 }, limits: { size: 40 } }),
    figures: flat([1]),
  });
  expect(small.stages.rubrics.calls).toBe(40);
});

test('the loop: iterations reached follow the keep rates, top-up rounds cover the expected shortfall', () => {
  const plan = estimatePlan({
    seeds: { count: 10, chars: 500 },
    config: config({ method: { poolSize: 10, maxIterations: 3 }, limits: { size: 100, topUpRounds: 2 } }),
    figures: flat([0.5, 0.5, 0.5]),
  });
  // Reached: 1, 0.5, 0.25 -> judged 1.75 per instruction; kept 0.875.
  expect(plan.loop.judged_per_instruction).toBeCloseTo(1.75, 6);
  expect(plan.loop.keep_probability).toBeCloseTo(0.875, 6);
  // Round 1 keeps 87.5 of 100: round 2 asks ceil(13 / 0.875) = 15 more, like the run would.
  expect(plan.loop.rounds.map((r) => r.instructions)).toEqual([100, 15]);
  expect(plan.stages.improve.calls).toBe(Math.round(115 * 0.75));
  expect(plan.stages.judge.calls).toBe(Math.round(2 * 115 * 1.75));
  // Repairs multiply a stage's calls.
  const repaired = estimatePlan({
    seeds: { count: 10, chars: 500 },
    config: config({ method: { poolSize: 10 }, limits: { size: 100 } }),
    figures: {
      ...flat([1]),
      callsPerStructuralCall: { ...BENCH_FIGURES.callsPerStructuralCall, encode: 1.5 },
    },
  });
  expect(repaired.stages.encode.calls).toBe(15);
});

test('wall time: the binding limit per rate-limit bucket, or concurrency at an assumed latency', () => {
  const rpmBound = estimatePlan({
    seeds: { count: 30, chars: 1200 },
    config: config({ roles: { strong: { rpm: 60 }, judge: { rpm: 60 }, target: { tpm: 1000 } } }),
    figures: flat([1]),
  });
  // strong and judge are one model on one endpoint: one bucket, as the client limiter counts them.
  const shared = rpmBound.wall.buckets.find((b) => b.roles.includes('strong'))!;
  expect(shared.roles).toEqual(['strong', 'judge']);
  expect(shared.binding).toBe('rpm');
  expect(shared.minutes_at_rpm).toBeCloseTo(shared.calls / 60, 3);
  const target = rpmBound.wall.buckets.find((b) => b.roles.includes('target'))!;
  expect(target.binding).toBe('tpm');
  expect(target.minutes_at_tpm).toBeCloseTo(target.tokens / 1000, 3);
  expect(rpmBound.wall.seconds).toBe(
    Math.round(Math.max(shared.minutes_at_rpm!, target.minutes_at_tpm!) * 60),
  );
  const text = renderPlan(rpmBound);
  expect(text).toMatch(/expected wall time: .* set by (rpm|tpm) of/);

  const unlimited = estimatePlan({ seeds: { count: 30, chars: 1200 }, config: config(), figures: flat([1]) });
  expect(unlimited.wall.buckets.every((b) => b.binding === 'none')).toBe(true);
  expect(unlimited.wall.binding).toMatch(/concurrency .*assumed 2 s per LLM call/);
  expect(renderPlan(unlimited)).toContain('no limit configured');
});

test('cost per stage and role from the role prices; unpriced roles say so', () => {
  const plan = estimatePlan({
    seeds: { count: 10, chars: 400 },
    config: config({
      roles: {
        strong: { pricePerMTokIn: 2, pricePerMTokOut: 8 },
        judge: { pricePerMTokIn: 2, pricePerMTokOut: 8 },
      },
    }),
    figures: flat([1]),
  });
  const s = plan.roles.strong;
  expect(s.cost_usd).toBeCloseTo((s.prompt_tokens * 2 + s.completion_tokens * 8) / 1e6, 4);
  expect(plan.roles.target.cost_usd).toBeNull();
  // The answer stage is half priced: its cost says which role it leaves out.
  expect(plan.stages.answer.unpriced_roles).toEqual(['target']);
  expect(renderPlan(plan)).toMatch(/\| answer \|.*\+ target \(no price\)/);
  expect(plan.total.cost_usd).toBeCloseTo(s.cost_usd! + plan.roles.judge.cost_usd!, 4);
});

function entry(
  id: string,
  judged: Record<string, number>,
  kept: Record<string, number>,
  models = { strong: 'big', target: 'small', judge: 'big' },
): HistoryEntry {
  const j = Object.values(judged).reduce((a, b) => a + b, 0);
  const instructions = judged['1']!;
  return {
    run_id: id,
    finished_at: '2026-01-01T00:00:00Z',
    models,
    theta: 3,
    maxIterations: 4,
    seeds: { count: 10, chars: 2000 },
    rubricEntries: 5,
    counters: {
      seeds: 10,
      encoded: 10,
      instructions,
      kept: Object.values(kept).reduce((a, b) => a + b, 0),
      dropped: 0,
      failed: 0,
      keptByIteration: kept,
      judgedByIteration: judged,
      duplicatesRemoved: 0,
    },
    usage: {
      'encode/strong': { calls: 12, promptTokens: 12 * 300, completionTokens: 12 * 20 },
      'rubrics/strong': { calls: 5, promptTokens: 500, completionTokens: 500 },
      'judge/judge': { calls: 2 * j, promptTokens: 2 * j * 400, completionTokens: 2 * j * 5 },
    },
  };
}

test('figures measured on earlier runs: pooled keep rates, tokens per call, repairs; only the same models and theta', () => {
  const a = entry('a', { '1': 100, '2': 50 }, { '1': 50, '2': 25 });
  const b = entry('b', { '1': 100, '2': 30 }, { '1': 70, '2': 15 });
  const other = entry('c', { '1': 100 }, { '1': 100 }, { strong: 'x', target: 'y', judge: 'x' });
  const runs = matchingRuns([a, b, other], { strong: 'big', target: 'small', judge: 'big' }, 3);
  expect(runs.map((r) => r.run_id)).toEqual(['a', 'b']);
  expect(matchingRuns([a, b], { strong: 'big', target: 'small', judge: 'big' }, 2)).toEqual([]);
  const f = figuresFromRuns(runs, BENCH_FIGURES);
  expect(f.source).toBe('history');
  expect(f.label).toMatch(/measured on 2 earlier runs/);
  expect(f.keepRates).toEqual([120 / 200, 40 / 80]);
  // 24 encode calls for 20 seeds: repairs.
  expect(f.callsPerStructuralCall.encode).toBeCloseTo(1.2, 6);
  expect(f.tokens['judge/judge']).toEqual({ prompt: 400, completion: 5 });
  // encode prompt without the seed: 300 per call minus (4000 chars / 4) over 24 calls.
  expect(f.encodePromptOverhead).toBeCloseTo(300 - 1000 / 24, 6);
  // Nothing to learn from: the bench's figures, labelled as such.
  expect(figuresFromRuns([], BENCH_FIGURES).label).toMatch(/defaults from the bench/);
});

test('plan --json: the plan as one JSON object, per stage and role, with its figures named', async () => {
  const r = await cli(['plan', '--seeds', seeds, '--size', '300', '--json']);
  expect(r.code).toBe(0);
  const plan = JSON.parse(r.stdout) as Plan;
  expect(Object.keys(plan.stages)).toEqual(['encode', 'rubrics', 'decode', 'improve', 'answer', 'judge']);
  expect(Object.keys(plan.roles)).toEqual(['strong', 'target', 'judge']);
  for (const cell of [...Object.values(plan.stages), ...Object.values(plan.roles), plan.total]) {
    expect(Number.isInteger(cell.calls)).toBe(true);
    expect(Number.isInteger(cell.prompt_tokens)).toBe(true);
    expect(Number.isInteger(cell.completion_tokens)).toBe(true);
    expect(cell).toHaveProperty('cost_usd');
  }
  expect(plan.inputs.size).toBe(300);
  expect(plan.inputs.seeds).toBe(32);
  expect(plan.stages.encode.calls).toBe(32);
  expect(plan.total.calls).toBe(Object.values(plan.stages).reduce((a, c) => a + c.calls, 0));
  expect(plan.figures.source).toBe('bench');
  expect(typeof plan.wall.seconds).toBe('number');

  const human = await cli(['plan', '--seeds', seeds]);
  expect(human.code).toBe(0);
  expect(human.stdout).toContain('figures: defaults from the bench');
  expect(human.stdout).toContain('per stage');
  expect(human.stdout).toContain('no limit configured');
});

test('plan with a bad seeds file exits 2 naming the file and line', async () => {
  const dir = tmpDir('codeclm-plan-bad-');
  const bad = path.join(dir, 'seeds.jsonl');
  fs.writeFileSync(bad, '{"instruction":"Write a haiku about rain."}\n{"instruction": "unterminated\n');
  const r = await cli(['plan', '--seeds', bad]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${bad}:2`);
  expect(r.stdout).toBe('');
});

test('run --dry-run prints the plan and starts no workflow', async () => {
  const dir = tmpDir('codeclm-dry-');
  const out = path.join(dir, 'out');
  const runId = `dry-run-${Date.now()}`;
  const r = await cli(['run', '--seeds', seeds, '--out', out, '--run-id', runId, '--dry-run', '--json'], {
    TEMPORAL_ADDRESS: testAddress(),
  });
  expect(r.code).toBe(0);
  const plan = JSON.parse(r.stdout) as Plan;
  expect(plan.total.calls).toBeGreaterThan(0);
  expect(fs.existsSync(out)).toBe(false);
  const client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
  try {
    await expect(client.workflow.getHandle(runId).describe()).rejects.toThrow(/not found/i);
  } finally {
    await client.connection.close();
  }
});

test('run writes plan.json before it starts, the report compares it, and the next plan measures on the run', async () => {
  const dir = tmpDir('codeclm-plan-run-');
  const out = path.join(dir, 'out');
  const env = {
    TEMPORAL_ADDRESS: testAddress(),
    OPENAI_BASE_URL: '',
    CODECLM_HOME: path.join(dir, 'home'),
    CODECLM_SIM_PORT: String(await freePort()),
    CODECLM_TASK_QUEUE: uniqueQueue('plan-run'),
  };
  const r = await cli(['run', '--seeds', seeds, '--out', out, '--size', '12', '--worker', '--json'], env);
  expect(r.code).toBe(0);
  const plan = JSON.parse(fs.readFileSync(path.join(out, 'plan.json'), 'utf8')) as Plan;
  const { run_id: runId } = JSON.parse(r.stdout) as { runId?: string; run_id?: string };
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
  expect(plan.run_id).toBe(report.run_id);
  expect(runId ?? report.run_id).toBe(report.run_id);
  expect(plan.figures.source).toBe('bench');
  const total = report.plan_vs_actual!.rows.find((row) => row.stage === 'total')!;
  expect(total.planned_calls).toBe(plan.total.calls);
  expect(total.actual_calls).toBe(report.usage.total.calls);
  expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain('## Plan vs actual');
  expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('<h2>Plan vs actual</h2>');

  const next = await cli(['plan', '--seeds', seeds, '--json'], env);
  expect(next.code).toBe(0);
  expect((JSON.parse(next.stdout) as Plan).figures.label).toMatch(/measured on 1 earlier run/);
}, 600_000);
