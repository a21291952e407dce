import { z } from 'zod';
import { configSchema, methodSchema } from '../schemas/config';

/**
 * The config schema plus rules that span fields. They live here rather than on the shared
 * configSchema because zod 4 refuses `.extend()` on refined objects and other modules extend it.
 * zod skips refinements once a field check has aborted (e.g. a non-integer), so the loader also
 * runs `crossFieldIssues` on the raw input itself: one error message lists every problem at once.
 * The rules therefore check types before comparing.
 */

/** Scores are on a 1-10 scale, so a gap can never exceed 9. */
const MAX_GAP = 9;

export interface CrossFieldIssue {
  path: (string | number)[];
  message: string;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Rules over the method section; `method` may be partly invalid or missing defaults. */
export function crossFieldIssues(method: unknown): CrossFieldIssue[] {
  if (method === null || typeof method !== 'object') return [];
  const m = { ...methodSchema.parse({}), ...(method as Record<string, unknown>) } as Record<string, unknown>;
  const out: CrossFieldIssue[] = [];
  if (num(m.skillsPerEntryMin) && num(m.skillsPerEntryMax) && m.skillsPerEntryMin > m.skillsPerEntryMax) {
    out.push({
      path: ['method', 'skillsPerEntryMin'],
      message: `must be <= method.skillsPerEntryMax (${m.skillsPerEntryMax}), got ${m.skillsPerEntryMin}`,
    });
  }
  if (num(m.theta) && m.theta >= MAX_GAP) {
    out.push({
      path: ['method', 'theta'],
      message: `expected number < ${MAX_GAP}, got ${m.theta}: scores are 1-10, so no gap could exceed it and nothing would be kept`,
    });
  }
  return out;
}

export const checkedConfigSchema = configSchema.superRefine((cfg, ctx) => {
  for (const issue of crossFieldIssues(cfg.method)) ctx.addIssue({ code: 'custom', ...issue });
});

export type CheckedConfig = z.infer<typeof checkedConfigSchema>;
