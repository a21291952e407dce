import type { ResolvedConfig } from '../schemas/config';
import type { Usage } from '../schemas/records';

/**
 * Money spent, from token counts and the per-role prices of the config (pricePerMTokIn/Out, in
 * dollars per million tokens). Usage keys are "stage/role". A role without prices is listed as
 * unpriced rather than counted as free; with no prices at all there is no cost (null).
 *
 * Calls that went through the Batch API (the `batch*` part of a usage cell, src/batch) are priced at
 * the role's batch price (batchPricePerMTokIn/Out, default half the online price); the cost shows
 * the online and batch parts per stage and role, and what the same tokens would have cost online.
 */
export interface Cost {
  total_usd: number;
  per_role_usd: Record<string, number>;
  per_stage_role_usd: Record<string, number>;
  unpriced_roles: string[];
  /** The parts of total_usd paid at online and at batch prices. */
  online_usd: number;
  batch_usd: number;
  /** The batch part per "stage/role" (only where there was one). */
  per_stage_role_batch_usd: Record<string, number>;
  /** The same tokens all at online prices: what the run would have cost without batch mode. */
  all_online_usd: number;
}

/** A role's prices in USD per million tokens (no secrets: `codeclm status` reads them from the run). */
export interface Price {
  in?: number;
  out?: number;
  batchIn?: number;
  batchOut?: number;
}
export type Prices = Record<string, Price>;

export function pricesOf(config: Pick<ResolvedConfig, 'roles'>): Prices {
  const out: Prices = {};
  for (const [name, role] of Object.entries(config.roles))
    out[name] = {
      in: role.pricePerMTokIn,
      out: role.pricePerMTokOut,
      batchIn: role.batchPricePerMTokIn,
      batchOut: role.batchPricePerMTokOut,
    };
  return out;
}

/** Batch prices default to half the online ones (OpenAI's Batch API discount). */
function batchPrice(p: Price): { in: number; out: number } {
  return { in: p.batchIn ?? (p.in ?? 0) / 2, out: p.batchOut ?? (p.out ?? 0) / 2 };
}

export function computeCost(usage: Usage, prices: Prices): Cost | null {
  const priced = Object.values(prices).some((p) => p.in !== undefined || p.out !== undefined);
  if (!priced) return null;
  const cost: Cost = {
    total_usd: 0,
    per_role_usd: {},
    per_stage_role_usd: {},
    unpriced_roles: [],
    online_usd: 0,
    batch_usd: 0,
    per_stage_role_batch_usd: {},
    all_online_usd: 0,
  };
  for (const [key, cell] of Object.entries(usage)) {
    const role = key.slice(key.lastIndexOf('/') + 1);
    const p = prices[role];
    if (!p || (p.in === undefined && p.out === undefined)) {
      if (!cost.unpriced_roles.includes(role)) cost.unpriced_roles.push(role);
      continue;
    }
    const bIn = cell.batchPromptTokens ?? 0;
    const bOut = cell.batchCompletionTokens ?? 0;
    const online =
      ((cell.promptTokens - bIn) * (p.in ?? 0) + (cell.completionTokens - bOut) * (p.out ?? 0)) / 1e6;
    const bp = batchPrice(p);
    const batch = (bIn * bp.in + bOut * bp.out) / 1e6;
    const usd = online + batch;
    cost.per_stage_role_usd[key] = round(usd);
    if (bIn || bOut) cost.per_stage_role_batch_usd[key] = round(batch);
    cost.per_role_usd[role] = round((cost.per_role_usd[role] ?? 0) + usd);
    cost.total_usd += usd;
    cost.online_usd += online;
    cost.batch_usd += batch;
    cost.all_online_usd += (cell.promptTokens * (p.in ?? 0) + cell.completionTokens * (p.out ?? 0)) / 1e6;
  }
  cost.total_usd = round(cost.total_usd);
  cost.online_usd = round(cost.online_usd);
  cost.batch_usd = round(cost.batch_usd);
  cost.all_online_usd = round(cost.all_online_usd);
  cost.unpriced_roles.sort();
  return cost;
}

/** Lines for a terminal or markdown: the split when any call went through the Batch API. */
export function costSplitLine(cost: Cost, money: (x: number) => string): string | undefined {
  if (cost.batch_usd === 0 && Object.keys(cost.per_stage_role_batch_usd).length === 0) return undefined;
  const saved = cost.all_online_usd - cost.total_usd;
  return `cost ${money(cost.total_usd)}: online ${money(cost.online_usd)}, batch ${money(cost.batch_usd)}; all online it would have been ${money(cost.all_online_usd)} (saved ${money(saved)})`;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
