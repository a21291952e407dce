import { z } from 'zod';
import { TaskOutputError, type StructuredTask } from './task';

/** Self-Rubrics, part 2: rewrite one instruction by one action, making it harder. docs/method.md section 4. */
export const improveOutput = z.object({ instruction: z.string().min(1) });
export type ImproveOutput = z.infer<typeof improveOutput>;

export interface ImproveTaskInput {
  /** The use case of the instruction's metadata, which the rewrite must keep. */
  useCase: string;
  instruction: string;
  /** One rubric's action. */
  action: string;
}

export const improveTask: StructuredTask<ImproveTaskInput, ImproveOutput> = {
  kind: 'structured',
  name: 'codeclm_improve',
  stage: 'improve',
  role: 'strong',
  output: improveOutput,
  system:
    'You rewrite instructions for AI assistants so that they become more demanding while staying ' +
    'answerable, self-contained and natural.',
  user:
    'Rewrite the instruction by applying the action. Keep its use case ("{{use_case}}") and intent; ' +
    'return only the new instruction.\n\n' +
    '<action>\n{{action}}\n</action>\n\n<instruction>\n{{instruction}}\n</instruction>',
  slots: (input) => ({ use_case: input.useCase, action: input.action, instruction: input.instruction }),
  clean(raw) {
    const instruction = raw.instruction.trim();
    // Whitespace passes the schema's min(1); an empty instruction must not go on to be answered.
    if (!instruction) throw new TaskOutputError(improveTask.name, 'instruction', 'empty after trimming');
    return { instruction };
  },
};
