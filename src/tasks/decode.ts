import { z } from 'zod';
import type { StructuredTask } from './task';

/** Decode: metadata -> N basic instructions, zero-shot (no seed is shown). docs/method.md section 3. */
export const decodeOutput = z.object({ instructions: z.array(z.string().min(1)).min(1) });
export type DecodeOutput = z.infer<typeof decodeOutput>;

export const decodeTask: StructuredTask<DecodeOutput> = {
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
};
