import { resolvedConfigSchema, type ResolvedConfig } from '../src/schemas/config';
import type { RunResult } from '../src/schemas/run';
import type { SimStats } from '../src/sim';
import type { SimProcess } from './procs';

/**
 * `bench` section `cost`: the same run online and with answers and judging through the Batch API,
 * side by side on two simulators with the same seed, priced at the simulator's list prices (a
 * batch token costs half an online one). Cost per kept pair, and the wall time of each.
 *
 * The simulator finishes a batch after `batchDelayMs` (a real provider takes minutes to hours within
 * its 24 h window), so the batch side's wall time here is set by that delay and the number of
 * batch round trips a run needs (answers and judging, per iteration), not by the provider.
 */
export interface CostSizes {
  size: number;
  concurrency: number;
  poolSize: number;
  /** How long the simulator keeps each batch in progress, ms. */
  batchDelayMs: number;
}

/** Batch settings for the bench: short flush and poll intervals, so the simulator's delay dominates. */
export const BENCH_BATCH_SETTINGS = {
  maxWaitSeconds: 1,
  pollSeconds: 1,
  maxPollSeconds: 2,
  runCheckSeconds: 5,
};

export interface CostRow {
  keptPairs: number;
  wallSeconds: number;
  /** Requests the simulator answered online and in batches. */
  onlineRequests: number;
  batchRequests: number;
  batchesCreated: number;
  tokens: number;
  costUsd: number;
  costPerKeptPairUsd: number;
  /** What the same tokens would have cost at online prices. */
  atOnlinePricesUsd: number;
}

export interface CostReport {
  simLatencyMs: number;
  batchDelayMs: number;
  size: number;
  prices: SimStats['prices'];
  batchStages: string;
  online: CostRow;
  batch?: CostRow;
  /** batch / online: cost per kept pair and wall time. */
  batchOverOnline?: { costPerKeptPair: number; wallSeconds: number };
  sameKeptPairs?: boolean;
  /** Why there is no batch row (a codeclm without batch mode). */
  batchUnavailable?: string;
  note: string;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const usd = (x: number) => round(x, 9);

/** One side's row, from its run's result and its simulator's own counters and prices. */
export function costRow(result: Pick<RunResult, 'counters' | 'wallSeconds'>, stats: SimStats): CostRow {
  const kept = result.counters.kept;
  const tokens =
    stats.promptTokens + stats.completionTokens + stats.batch.promptTokens + stats.batch.completionTokens;
  const p = stats.prices.online;
  const atOnline =
    ((stats.promptTokens + stats.batch.promptTokens) * p.inputPerMTok +
      (stats.completionTokens + stats.batch.completionTokens) * p.outputPerMTok) /
    1e6;
  return {
    keptPairs: kept,
    wallSeconds: round(result.wallSeconds, 1),
    onlineRequests: stats.byStatus['200'] ?? 0,
    batchRequests: stats.batch.requests,
    batchesCreated: stats.batch.batchesCreated,
    tokens,
    costUsd: usd(stats.cost.total),
    costPerKeptPairUsd: usd(stats.cost.total / Math.max(1, kept)),
    atOnlinePricesUsd: usd(atOnline),
  };
}

export function compareCost(online: CostRow, batch: CostRow): CostReport['batchOverOnline'] {
  return {
    costPerKeptPair: round(batch.costPerKeptPairUsd / Math.max(1e-12, online.costPerKeptPairUsd)),
    wallSeconds: round(batch.wallSeconds / Math.max(1e-9, online.wallSeconds), 2),
  };
}

/**
 * The batch side's config: the online one with the target's answers, the strong model's answers
 * and the judge through the Batch API; encode, rubrics, decode and improve stay online. Parsed by
 * the config schema, so a codeclm without batch mode says so here.
 */
export function batchModeConfig(online: ResolvedConfig): ResolvedConfig {
  const batch = { ...BENCH_BATCH_SETTINGS };
  const r = online.roles;
  return resolvedConfigSchema.parse({
    ...online,
    roles: {
      strong: { ...r.strong, mode: 'online', stageModes: { answer: 'batch' }, batch },
      target: { ...r.target, mode: 'batch', batch },
      judge: { ...r.judge, mode: 'batch', batch },
    },
    // An LLM activity in batch mode waits for its batch: a longer timeout than a single call's.
    limits: { ...online.limits, llmActivityTimeoutMinutes: 30 },
  });
}
export const BATCH_STAGES =
  'answer (target and strong) and judge in batch; encode, rubrics, decode, improve online';

export interface CostDeps {
  /** A simulator process of its own (the bench's seed), with this batch delay. */
  sim(o: { latencyMs: number; batchDelayMs: number }): Promise<SimProcess>;
  /** The bench's config for an endpoint. */
  config(baseURL: string): ResolvedConfig;
  /** Runs the pipeline durably to the end on a worker of its own. */
  run(name: string, config: ResolvedConfig): Promise<RunResult>;
  log(line: string): void;
}

/** Both sides at the same time, on separate simulators with the same seed. */
export async function measureCost(deps: CostDeps, S: CostSizes, simLatencyMs: number): Promise<CostReport> {
  const [simOnline, simBatch] = await Promise.all([
    deps.sim({ latencyMs: simLatencyMs, batchDelayMs: S.batchDelayMs }),
    deps.sim({ latencyMs: simLatencyMs, batchDelayMs: S.batchDelayMs }),
  ]);
  try {
    const onlineConfig = deps.config(simOnline.url);
    let batchConfig: ResolvedConfig | undefined;
    let batchUnavailable: string | undefined;
    try {
      batchConfig = batchModeConfig(deps.config(simBatch.url));
    } catch (err) {
      // A codeclm whose config has no batch mode: the online half still runs and says why.
      batchUnavailable = `batch mode is not available in this codeclm's config: ${(err as Error).message.slice(0, 300)}`;
      deps.log(`bench: cost: ${batchUnavailable}`);
    }
    const [onlineRun, batchRun] = await Promise.all([
      deps.run('cost-online', onlineConfig),
      batchConfig ? deps.run('cost-batch', batchConfig) : undefined,
    ]);
    const [onlineStats, batchStats] = await Promise.all([simOnline.stats(), simBatch.stats()]);
    const online = costRow(onlineRun, onlineStats);
    const batch = batchRun ? costRow(batchRun, batchStats) : undefined;
    return {
      simLatencyMs,
      batchDelayMs: S.batchDelayMs,
      size: S.size,
      prices: onlineStats.prices,
      batchStages: BATCH_STAGES,
      online,
      ...(batch
        ? {
            batch,
            batchOverOnline: compareCost(online, batch),
            sameKeptPairs: online.keptPairs === batch.keptPairs,
          }
        : { batchUnavailable }),
      note: `both runs at the same time on two simulators with the same seed; the simulator finishes each batch ${S.batchDelayMs} ms after it starts (a provider: minutes to hours within 24 h), so the batch side's wall time counts batch round trips`,
    };
  } finally {
    await Promise.all([simOnline.stop(), simBatch.stop()]);
  }
}

/** The text summary: the two rows side by side, then the ratios. */
export function renderCost(c: CostReport): string[] {
  const row = (name: string, r: CostRow) =>
    `            ${name.padEnd(9)}${String(r.keptPairs).padEnd(7)}${`$${r.costPerKeptPairUsd.toFixed(6)}`.padEnd(13)}${`$${r.costUsd.toFixed(4)}`.padEnd(10)}${`$${r.atOnlinePricesUsd.toFixed(4)}`.padEnd(12)}${String(r.onlineRequests).padEnd(8)}${`${r.batchRequests} in ${r.batchesCreated}`.padEnd(14)}${r.wallSeconds} s`;
  return [
    `cost        online vs batch (${c.batchStages}), $${c.prices.online.inputPerMTok}/$${c.prices.online.outputPerMTok} per M tokens online, $${c.prices.batch.inputPerMTok}/$${c.prices.batch.outputPerMTok} batch:`,
    `            ${'mode'.padEnd(9)}${'kept'.padEnd(7)}${'$/kept pair'.padEnd(13)}${'cost'.padEnd(10)}${'at online $'.padEnd(12)}${'online'.padEnd(8)}${'batch lines'.padEnd(14)}wall`,
    row('online', c.online),
    ...(c.batch && c.batchOverOnline
      ? [
          row('batch', c.batch),
          `            batch / online: cost per kept pair ${c.batchOverOnline.costPerKeptPair}, wall time ${c.batchOverOnline.wallSeconds} (simulator: ${c.batchDelayMs} ms per batch)`,
        ]
      : [`            batch    (not run: ${c.batchUnavailable})`]),
  ];
}
