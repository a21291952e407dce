import { z } from 'zod';
import { normalisePhrase, TaskOutputError, type StructuredTask } from './task';

/** Encode: seed instruction -> metadata (one use case, at most K skills). docs/method.md section 1. */
export const encodeOutput = z.object({
  use_case: z.string().min(1).max(120),
  skills: z.array(z.string().min(1).max(80)).min(1).max(10),
});
export type EncodeOutput = z.infer<typeof encodeOutput>;

export interface EncodeTaskInput {
  /** The seed instruction to label. */
  instruction: string;
  /** method.skillsPerSeed: the K of "at most K skills". */
  maxSkills: number;
}

export const encodeTask: StructuredTask<EncodeTaskInput, EncodeOutput> = {
  kind: 'structured',
  name: 'codeclm_encode',
  stage: 'encode',
  role: 'strong',
  output: encodeOutput,
  // No example labels: a weak model copies an example phrase into its answer (issue 12: a 135M model
  // echoed the old example skill for every seed). The form is described in words instead.
  system:
    'You label instructions that people send to an AI assistant. For each instruction you name the ' +
    'use case it serves and the skills an assistant needs to answer it well. Labels are short, ' +
    'general and reusable across many instructions, and they come from the instruction in front of ' +
    'you, in your own words. You never explain your labels.',
  user:
    'Label the instruction below.\n' +
    '- use_case: one short noun phrase (two to five words) naming the kind of task or its domain.\n' +
    '- skills: at most {{max_skills}} skills, each a noun phrase of two or three words naming an ability ' +
    'the answer needs (an ability, not a topic).\n\n' +
    '<instruction>\n{{instruction}}\n</instruction>',
  slots: (input) => ({ instruction: input.instruction, max_skills: String(input.maxSkills) }),
  clean(raw, input) {
    const metadata = normaliseMetadata(raw, input.maxSkills);
    // A label made only of punctuation normalises to nothing: better a failed seed than an empty pool entry.
    if (!metadata.use_case) {
      throw new TaskOutputError(encodeTask.name, 'use_case', 'nothing left after normalising');
    }
    if (metadata.skills.length === 0) {
      throw new TaskOutputError(encodeTask.name, 'skills', 'no skill left after normalising');
    }
    return metadata;
  },
};

/** Normalise case and spacing, drop duplicates, and cap the skills at `maxSkills`. */
export function normaliseMetadata(
  raw: EncodeOutput,
  maxSkills: number,
): { use_case: string; skills: string[] } {
  const skills = [...new Set(raw.skills.map(normalisePhrase).filter((s) => s.length > 0))].slice(
    0,
    maxSkills,
  );
  return { use_case: normalisePhrase(raw.use_case), skills };
}
