import { ApplicationFailure } from '@temporalio/common';
import { createStageActivities, DEFAULT_MAX_OUTPUT_CHARS, OUTPUT_TOO_LONG } from '../src/activities/stages';
import type { LlmClient } from '../src/llm/types';
import { configSchema, limitsSchema } from '../src/schemas/config';
import { simConfig } from './helpers/pipeline';

/** Input bounds: LLM output over limits.maxOutputChars never leaves an activity (Temporal's payload limit). */
const usage = { calls: 1, promptTokens: 1, completionTokens: 1 };
function fakeLlm(text: string, structured: unknown): LlmClient {
  return {
    role: 'strong',
    model: 'fake',
    structured: async () => ({ value: structured as never, usage }),
    text: async () => ({ value: text, usage }),
  };
}
const cfg = simConfig('http://127.0.0.1:1/v1');
const method = cfg.method;
const huge = 'x'.repeat(DEFAULT_MAX_OUTPUT_CHARS + 1);

test('limits.maxOutputChars defaults to 20000 and is validated', () => {
  expect(configSchema.parse({}).limits.maxOutputChars).toBe(20000);
  expect(limitsSchema.safeParse({ maxOutputChars: 0 }).success).toBe(false);
});

test('an over-long answer is rejected, non-retryably, with the reason; under the bound it passes', async () => {
  const acts = createStageActivities({ llm: () => fakeLlm(huge, {}), now: Date.now });
  const input = {
    who: 'strong' as const,
    cfg: cfg.roles.strong,
    method,
    instruction: 'hi',
    label: 'strong answer e1-i0',
  };
  const err = (await acts.answer(input).catch((e: unknown) => e)) as ApplicationFailure;
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.type).toBe(OUTPUT_TOO_LONG);
  expect(err.nonRetryable).toBe(true);
  expect(err.message).toMatch(
    /strong answer \(strong answer e1-i0\) is 20001 characters, over limits.maxOutputChars \(20000\)/,
  );
  // A larger configured bound lets it through; a smaller one rejects shorter text.
  await expect(acts.answer({ ...input, maxOutputChars: 50_000 })).resolves.toMatchObject({ text: huge });
  const short = createStageActivities({ llm: () => fakeLlm('y'.repeat(101), {}), now: Date.now });
  await expect(short.answer({ ...input, maxOutputChars: 100 })).rejects.toThrow(
    /101 characters, over limits.maxOutputChars \(100\)/,
  );
});

test('over-long decoded instructions are dropped; an over-long improved instruction is rejected', async () => {
  const acts = createStageActivities({
    llm: () => fakeLlm('', { instructions: ['short one', huge, 'short two'], instruction: huge }),
    now: Date.now,
  });
  const metadata = { use_case: 'coding', skills: ['python'] };
  const decoded = await acts.decodeInstructions({
    strong: cfg.roles.strong,
    method,
    metadata,
    count: 5,
    batch: 1,
    label: 'decode e1',
  });
  expect(decoded.instructions).toEqual(['short one', 'short two']);
  await expect(
    acts.improveInstruction({
      strong: cfg.roles.strong,
      method,
      metadata,
      instruction: 'a',
      action: 'add constraints',
      label: 'improve e1-i0',
    }),
  ).rejects.toThrow(/improved instruction \(improve e1-i0\) is 20001 characters/);
});
