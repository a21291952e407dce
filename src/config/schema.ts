import { z } from 'zod';
import { configSchema } from '../schemas/config';

/**
 * The config schema plus rules that span fields. They live here rather than on the shared
 * configSchema because zod 4 refuses `.extend()` on refined objects and other modules extend it.
 * `when: () => true` runs the rules even when other fields failed, so a single error message
 * lists every problem at once; the rules therefore check types before comparing.
 */

/** Scores are on a 1-10 scale, so a gap can never exceed 9. */
const MAX_GAP = 9;

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export const checkedConfigSchema = configSchema.superRefine(
  (cfg, ctx) => {
    const m = (cfg as Partial<typeof cfg>).method as Partial<typeof cfg.method> | undefined;
    if (!m || typeof m !== 'object') return;
    if (num(m.skillsPerEntryMin) && num(m.skillsPerEntryMax) && m.skillsPerEntryMin > m.skillsPerEntryMax) {
      ctx.addIssue({
        code: 'custom',
        path: ['method', 'skillsPerEntryMin'],
        message: `must be <= method.skillsPerEntryMax (${m.skillsPerEntryMax}), got ${m.skillsPerEntryMin}`,
      });
    }
    if (num(m.theta) && m.theta >= MAX_GAP) {
      ctx.addIssue({
        code: 'custom',
        path: ['method', 'theta'],
        message: `expected number < ${MAX_GAP}, got ${m.theta}: scores are 1-10, so no gap could exceed it and nothing would be kept`,
      });
    }
  },
  { when: () => true },
);

export type CheckedConfig = z.infer<typeof checkedConfigSchema>;
