import type { TextTask } from './task';

/** Both models answer the instruction (free text). docs/method.md section 5, step 1. */
function answerTask(role: 'strong' | 'target'): TextTask {
  return {
    kind: 'text',
    name: `codeclm_answer_${role}`,
    stage: 'answer',
    role,
    system: 'You are a helpful, accurate and thorough assistant.',
    user: '{{instruction}}',
  };
}

export const answerStrongTask = answerTask('strong');
export const answerTargetTask = answerTask('target');
