import { z } from 'zod';
import type { StructuredTask } from './task';

/**
 * `codeclm check`'s probe: the smallest structured call there is, so it costs a few tokens even on a
 * CPU-bound local model, yet goes through the same structured-output path (and dialect choice) as
 * every pipeline task.
 */
export const checkOutput = z.object({ ok: z.boolean() });
export type CheckOutput = z.infer<typeof checkOutput>;

export const checkTask: StructuredTask<void, CheckOutput> = {
  kind: 'structured',
  name: 'codeclm_check',
  stage: 'check',
  role: 'strong',
  output: checkOutput,
  system: 'You answer with a single JSON object and nothing else.',
  user: 'This is a connectivity check. Reply with the JSON object {"ok": true}.',
  slots: () => ({}),
  clean: (raw) => raw,
};
