import type { TextTask } from './task';

export interface AnswerTaskInput {
  instruction: string;
}

/** Both models answer the instruction (free text). docs/method.md section 5, step 1. */
function answerTask(role: 'strong' | 'target'): TextTask<AnswerTaskInput> {
  return {
    kind: 'text',
    name: `codeclm_answer_${role}`,
    stage: 'answer',
    role,
    system: 'You are a helpful, accurate and thorough assistant.',
    user: '{{instruction}}',
    slots: (input) => ({ instruction: input.instruction }),
    // Kept verbatim: answers are judged and written to the dataset as the model gave them (the LLM
    // boundary already refuses empty and cut-off replies).
    clean: (raw) => raw,
  };
}

export const answerStrongTask = answerTask('strong');
export const answerTargetTask = answerTask('target');
