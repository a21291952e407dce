import { renderTask, type ChatMessage } from '../src/tasks';
import { responseJsonSchema } from '../src/llm/json';
import { taskCases } from './prompts.fixture';

/**
 * Every prompt the pipeline sends, rendered from a typed input, pinned in
 * test/__snapshots__/prompts.snapshot.test.ts.snap. A prompt change shows up there as a diff to
 * review, and must be deliberate: rendered prompts key the LLM cache (src/llm/cached.ts), so a
 * changed byte misses every cached call of earlier runs. Update with `npx jest -u` on this file only.
 */
function show(messages: ChatMessage[]): string {
  return messages.map((m) => `--- ${m.role} ---\n${m.content}`).join('\n');
}

describe('rendered prompts', () => {
  test.each(taskCases.map((c) => [c.name, c] as const))('%s', (_, { task, input }) => {
    expect(show(renderTask(task, input))).toMatchSnapshot('messages');
    // The schema travels with the request too (response_format, or in the prompt for some dialects).
    if (task.kind === 'structured')
      expect(responseJsonSchema(task.output)).toMatchSnapshot('response schema');
  });
});
