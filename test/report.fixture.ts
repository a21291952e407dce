import { configSchema } from '../src/schemas/config';
import { describeConfig } from '../src/config/describe';
import { buildReport, type Report } from '../src/report/build';
import { computeCost, pricesOf } from '../src/report/cost';
import { emptyCounters, type RunProgress } from '../src/schemas/run';
import type { DatasetRecord, Metadata } from '../src/schemas/records';

/** A finished run's report built from fixed counters and metadata: no server, no model. */
export function fixtureConfig(prices = true) {
  const base = configSchema.parse({});
  const role = (model: string, priceIn?: number, priceOut?: number) => ({
    ...base.roles.strong,
    baseURL: 'https://api.example.com/v1',
    model,
    ...(prices ? { pricePerMTokIn: priceIn, pricePerMTokOut: priceOut } : {}),
  });
  return {
    roles: {
      strong: role('big-model', 2.5, 10),
      target: role('small-model', 0.15, 0.6),
      judge: { ...role('big-model', 2.5, 10), temperature: 0 },
    },
    method: base.method,
    limits: { ...base.limits, size: 6 },
  };
}

const md = (use_case: string, ...skills: string[]): Metadata => ({ use_case, skills });

export function fixtureReport(opts: { prices?: boolean } = {}): Report {
  const config = fixtureConfig(opts.prices ?? true);
  const counters = {
    ...emptyCounters(),
    seeds: 5,
    encoded: 5,
    pool: 4,
    instructions: 10,
    kept: 6,
    dropped: 2,
    failed: 2,
    keptByIteration: { '1': 3, '2': 2, '4': 1 },
    judgedByIteration: { '1': 8, '2': 5, '3': 3, '4': 3 },
    droppedAtCap: 2,
    keptFromTarget: 1,
    gapHistogram: { '-5': 1, '-1': 2, '0': 4, '2': 5, '4': 4, '6': 3 },
    rounds: 1,
  };
  const progress: RunProgress = {
    runId: 'fixture-run',
    phase: 'done',
    state: 'completed',
    outDir: '/tmp/fixture',
    size: 6,
    counters,
    usage: {
      'encode/strong': { calls: 5, promptTokens: 1000, completionTokens: 200 },
      'decode/strong': { calls: 4, promptTokens: 800, completionTokens: 1600 },
      'answer/strong': { calls: 19, promptTokens: 2000, completionTokens: 9000 },
      'answer/target': { calls: 19, promptTokens: 2000, completionTokens: 5000 },
      'judge/judge': { calls: 38, promptTokens: 30000, completionTokens: 400 },
    },
    failures: [
      {
        item: 'r1-e00002-i0001',
        stage: 'judge',
        reason: 'LlmInvalidOutput: score_a: expected number <= 10 | got 11',
      },
      { item: 'r1-e00003-i0000', stage: 'improve', reason: 'LlmRejected: 400 <content policy>' },
    ],
    startedAt: Date.parse('2025-01-01T10:00:00Z'),
    finishedAt: Date.parse('2025-01-01T10:03:20Z'),
  };
  const seedMetadata = [
    md('code review', 'debugging', 'python'),
    md('code review', 'refactoring'),
    md('trip planning', 'budgeting', 'scheduling'),
    md('email writing', 'tone control'),
    md('email writing', 'summarising', 'tone control'),
  ];
  const pool = [
    md('code review', 'debugging'),
    md('email writing', 'tone control', 'budgeting'),
    md('trip planning', 'scheduling'),
    md('code review', 'python', 'refactoring'),
  ];
  const records: DatasetRecord[] = Array.from({ length: 6 }, (_, i) => ({
    id: `r1-e0000${i % 4}-i000${i}`,
    instruction: `instruction ${i}`,
    response: `response ${i}`,
    source: i === 5 ? 'target' : 'strong',
    metadata: pool[i % 4]!,
    iteration: 1,
    scores: { strong: 9, target: 4, gap: 5 },
    run_id: 'fixture-run',
    actions: [],
  }));
  return buildReport({
    progress,
    records,
    seedMetadata,
    pool,
    config: describeConfig(config),
    cost: computeCost(progress.usage, pricesOf(config)),
  });
}
