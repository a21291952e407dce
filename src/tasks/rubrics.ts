import { z } from 'zod';
import type { Metadata } from '../schemas/records';
import type { StructuredTask } from './task';

/** Self-Rubrics, part 1: per metadata, rubrics of difficulty and one action per rubric. docs/method.md section 4. */
export const rubricsOutput = z.object({
  rubrics: z.array(z.object({ rubric: z.string().min(1), action: z.string().min(1) })).min(1),
});
export type RubricsOutput = z.infer<typeof rubricsOutput>;

export interface RubricsTaskInput {
  metadata: Metadata;
  /** method.rubrics: how many rubrics to ask for; more are cut. */
  count: number;
}

export const rubricsTask: StructuredTask<RubricsTaskInput, RubricsOutput> = {
  kind: 'structured',
  name: 'codeclm_rubrics',
  stage: 'rubrics',
  role: 'strong',
  output: rubricsOutput,
  system:
    'You design hard test questions for AI assistants. You know what separates a demanding ' +
    'request from an easy one in a given domain.',
  user:
    'Instructions of the use case "{{use_case}}" test these skills: {{skills}}.\n' +
    'Give {{count}} rubrics, each a criterion that makes such an instruction harder to answer well, ' +
    'and for each rubric one concrete action that rewrites an instruction to meet that criterion. ' +
    'Write each action as an imperative sentence that starts with a verb and says exactly what to ' +
    'add to or change in the instruction.',
  slots: (input) => ({
    count: String(input.count),
    use_case: input.metadata.use_case,
    skills: input.metadata.skills.join(', '),
  }),
  // Texts are kept as written: an action is rendered into the improve prompt, whose text keys the
  // LLM cache, so trimming it now would miss every cached improve call of earlier runs.
  clean: (raw, input) => ({ rubrics: raw.rubrics.slice(0, input.count) }),
};
