import { z } from 'zod';
import type { Metadata } from '../schemas/records';
import type { StructuredTask } from './task';

/** Decode: metadata -> N basic instructions, zero-shot (no seed is shown). docs/method.md section 3. */
export const decodeOutput = z.object({ instructions: z.array(z.string().min(1)).min(1) });
export type DecodeOutput = z.infer<typeof decodeOutput>;

export interface DecodeTaskInput {
  metadata: Metadata;
  /** How many instructions to ask for; more are cut. */
  count: number;
  /** 1 for an entry's first batch; top-up batches count on. */
  batch: number;
  /** limits.maxOutputChars: longer instructions are dropped (they could not travel as payloads). */
  maxChars: number;
}

export const decodeTask: StructuredTask<DecodeTaskInput, DecodeOutput> = {
  kind: 'structured',
  name: 'codeclm_decode',
  stage: 'decode',
  role: 'strong',
  output: decodeOutput,
  system:
    'You write realistic requests that users send to an AI assistant. Each request stands alone: it ' +
    'gives every detail the assistant needs and reads like something a real person typed.',
  user:
    'Write {{count}} different instructions for the use case "{{use_case}}". Answering each one well ' +
    'must call for these skills: {{skills}}.\n' +
    'Make them differ in topic, wording and length. Return them in the "instructions" list.\n' +
    // A later top-up batch for the same metadata must not repeat an earlier one.
    'Batch {{batch}}: when the batch number is above 1, write instructions unlike those of earlier batches.',
  slots: (input) => ({
    count: String(input.count),
    use_case: input.metadata.use_case,
    skills: input.metadata.skills.join(', '),
    batch: String(input.batch),
  }),
  /**
   * Trimmed, blank and repeated instructions dropped, over-long ones dropped with a note, then cut
   * to the count asked for. Fewer than asked is fine: the entry gets fewer (or a top-up batch).
   */
  clean(raw, input, note) {
    const unique = [...new Set(raw.instructions.map((s) => s.trim()).filter(Boolean))];
    const fitting = unique.filter((s) => s.length <= input.maxChars);
    if (fitting.length < unique.length) {
      note(
        `dropped ${unique.length - fitting.length} decoded instruction(s) over limits.maxOutputChars (${input.maxChars})`,
      );
    }
    return { instructions: fitting.slice(0, input.count) };
  },
};
