import type { ResolvedConfig } from '../schemas/config';
import type { Usage } from '../schemas/records';

/**
 * Money spent, from token counts and the per-role prices of the config (pricePerMTokIn/Out, in
 * dollars per million tokens). Usage keys are "stage/role". A role without prices is listed as
 * unpriced rather than counted as free; with no prices at all there is no cost (null).
 */
export interface Cost {
  total_usd: number;
  per_role_usd: Record<string, number>;
  per_stage_role_usd: Record<string, number>;
  unpriced_roles: string[];
}

type Prices = Record<string, { in?: number; out?: number }>;

export function pricesOf(config: Pick<ResolvedConfig, 'roles'>): Prices {
  const out: Prices = {};
  for (const [name, role] of Object.entries(config.roles))
    out[name] = { in: role.pricePerMTokIn, out: role.pricePerMTokOut };
  return out;
}

export function computeCost(usage: Usage, prices: Prices): Cost | null {
  const priced = Object.values(prices).some((p) => p.in !== undefined || p.out !== undefined);
  if (!priced) return null;
  const cost: Cost = { total_usd: 0, per_role_usd: {}, per_stage_role_usd: {}, unpriced_roles: [] };
  for (const [key, cell] of Object.entries(usage)) {
    const role = key.slice(key.lastIndexOf('/') + 1);
    const p = prices[role];
    if (!p || (p.in === undefined && p.out === undefined)) {
      if (!cost.unpriced_roles.includes(role)) cost.unpriced_roles.push(role);
      continue;
    }
    const usd = (cell.promptTokens * (p.in ?? 0) + cell.completionTokens * (p.out ?? 0)) / 1e6;
    cost.per_stage_role_usd[key] = round(usd);
    cost.per_role_usd[role] = round((cost.per_role_usd[role] ?? 0) + usd);
    cost.total_usd += usd;
  }
  cost.total_usd = round(cost.total_usd);
  cost.unpriced_roles.sort();
  return cost;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
