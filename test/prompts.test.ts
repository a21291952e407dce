import { ApplicationFailure } from '@temporalio/common';
import type { ZodType } from 'zod';
import { createStageActivities } from '../src/activities/stages';
import { parseStructured } from '../src/llm/json';
import { LlmFailure, type LlmClient } from '../src/llm/types';
import { methodSchema, resolvedRoleSchema } from '../src/schemas/config';
import {
  answerStrongTask,
  decodeTask,
  encodeTask,
  improveTask,
  judgeTask,
  renderTask,
  rubricsTask,
  templateSlots,
  TaskOutputError,
} from '../src/tasks';
import { taskCases } from './prompts.fixture';

/**
 * The task contract (src/tasks/task.ts) as a user meets it: what each prompt asks, and what the
 * clean-up of each task does to a model's reply before the pipeline keeps it. The exact prompt texts
 * are pinned separately, in test/prompts.snapshot.test.ts.
 */
const cases = taskCases.map((c) => [c.name, c] as const);
const metadata = { use_case: 'family travel planning', skills: ['itinerary design', 'budget arithmetic'] };
const ignore = () => undefined;

describe('prompts', () => {
  test.each(cases)('%s fills every slot of its template from its input, and no other', (_, c) => {
    expect(Object.keys(c.task.slots(c.input)).sort()).toEqual(templateSlots(c.task).sort());
  });

  /**
   * Prompts must not hand a weak model a phrase to copy (issue 12: a 135M model put the encode
   * prompt's example skill, "budget estimation", into the metadata of every seed). No prompt of the
   * pipeline carries a quoted example answer; the form of an answer is described in words.
   */
  const QUOTED_EXAMPLE = /\b(for example|for instance|e\.g\.|such as|like)\s*[:(]?\s*["“'][^"”']+["”']/i;

  test.each(cases)('%s gives no quoted example to copy', (_, c) => {
    for (const m of renderTask(c.task, c.input)) {
      expect(m.content).not.toMatch(QUOTED_EXAMPLE);
      // The phrases the old prompts offered, which weak models echoed.
      expect(m.content).not.toMatch(/budget estimation|trip itinerary planning|add a constraint that/i);
    }
  });

  test('the check catches the kind of example the encode prompt used to give', () => {
    expect('each a phrase (for example "budget estimation")').toMatch(QUOTED_EXAMPLE);
    expect('an action (for example "add a constraint that the answer must ...")').toMatch(QUOTED_EXAMPLE);
  });

  test('encode asks for the use case, at most K skills, and shows the instruction', () => {
    const [system, user] = renderTask(encodeTask, { instruction: 'Plan a picnic.', maxSkills: 3 });
    expect(system!.content).toMatch(/use case/);
    expect(user!.content).toMatch(/use_case: .*noun phrase/);
    expect(user!.content).toMatch(/at most 3 skills/);
    expect(user!.content).toContain('<instruction>\nPlan a picnic.\n</instruction>');
  });

  test('decode and rubrics show the metadata: the use case quoted, the skills comma-separated', () => {
    const decode = renderTask(decodeTask, { metadata, count: 7, batch: 2, maxChars: 100 })[1]!.content;
    expect(decode).toContain('Write 7 different instructions for the use case "family travel planning"');
    expect(decode).toContain('these skills: itinerary design, budget arithmetic.');
    expect(decode).toContain('Batch 2:');
    const rubrics = renderTask(rubricsTask, { metadata, count: 4 })[1]!.content;
    expect(rubrics).toContain('test these skills: itinerary design, budget arithmetic.');
    expect(rubrics).toContain('Give 4 rubrics');
  });
});

describe('clean-up of each task', () => {
  test('encode: labels lower-cased, spacing and punctuation normalised, repeats dropped, K skills kept', () => {
    const raw = {
      use_case: '  Family Travel-Planning. ',
      skills: ['Itinerary Design', 'itinerary  design', 'Budget_Arithmetic', 'Packing lists', 'Maps'],
    };
    expect(encodeTask.clean(raw, { instruction: 'x', maxSkills: 3 }, ignore)).toEqual({
      use_case: 'family travel planning',
      skills: ['itinerary design', 'budget arithmetic', 'packing lists'],
    });
  });

  test('encode: labels that normalise to nothing are rejected, naming the field', () => {
    const input = { instruction: 'x', maxSkills: 3 };
    expect(() => encodeTask.clean({ use_case: 'travel', skills: ['!!', '...'] }, input, ignore)).toThrow(
      new TaskOutputError('codeclm_encode', 'skills', 'no skill left after normalising'),
    );
    expect(() => encodeTask.clean({ use_case: '--', skills: ['maps'] }, input, ignore)).toThrow(
      /codeclm_encode output field "use_case"/,
    );
  });

  test('decode: instructions trimmed, blanks and repeats dropped, over-long ones dropped with a note, count kept', () => {
    const notes: string[] = [];
    const long = 'x'.repeat(41);
    const raw = {
      instructions: ['  Plan a day in Porto. ', 'Plan a day in Porto.', '   ', long, 'A', 'B', 'C'],
    };
    expect(
      decodeTask.clean(raw, { metadata, count: 3, batch: 1, maxChars: 40 }, (m) => notes.push(m)),
    ).toEqual({ instructions: ['Plan a day in Porto.', 'A', 'B'] });
    expect(notes).toEqual(['dropped 1 decoded instruction(s) over limits.maxOutputChars (40)']);
  });

  test('rubrics: cut to the count asked for, texts kept as written (they key the improve prompt)', () => {
    const rubrics = [1, 2, 3].map((i) => ({ rubric: `rubric ${i} `, action: ` Add detail ${i}.` }));
    expect(rubricsTask.clean({ rubrics }, { metadata, count: 2 }, ignore)).toEqual({
      rubrics: rubrics.slice(0, 2),
    });
  });

  test('improve: the new instruction is trimmed; a blank one is rejected, naming the field', () => {
    const input = { useCase: 'travel', instruction: 'Plan a trip.', action: 'Add a budget.' };
    expect(improveTask.clean({ instruction: '\n  Plan a trip under 500 EUR.  \n' }, input, ignore)).toEqual({
      instruction: 'Plan a trip under 500 EUR.',
    });
    expect(() => improveTask.clean({ instruction: ' \n ' }, input, ignore)).toThrow(
      'codeclm_improve output field "instruction": empty after trimming',
    );
  });

  test('answer and judge keep the reply as the model gave it', () => {
    const answer = '  Day 1: Alfama.\n\n';
    expect(answerStrongTask.clean(answer, { instruction: 'x' }, ignore)).toBe(answer);
    const scores = { score_a: 7.5, score_b: 2 };
    expect(judgeTask.clean(scores, { instruction: 'x', answerA: 'a', answerB: 'b' }, ignore)).toEqual(scores);
  });

  // Replies that do not match a task's schema never reach its clean-up: the LLM boundary rejects them
  // with an error naming the field, which is also what the repair prompt feeds back to the model.
  test.each<[string, ZodType<unknown>, string, string]>([
    ['codeclm_encode', encodeTask.output, '{"use_case": "travel"}', 'skills'],
    ['codeclm_decode', decodeTask.output, '{"instructions": []}', 'instructions'],
    ['codeclm_rubrics', rubricsTask.output, '{"rubrics": [{"rubric": "harder"}]}', 'rubrics[0].action'],
    ['codeclm_improve', improveTask.output, '{"instruction": ""}', 'instruction'],
    ['codeclm_judge', judgeTask.output, '{"score_a": 11, "score_b": 3}', 'score_a'],
  ])('%s: a malformed reply is rejected, naming the field', (_, schema, reply, field) => {
    const parsed = parseStructured(schema, reply);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(`at ${field}`);
  });
});

describe('stages call tasks through their contract', () => {
  /** An LLM client that always gives `value`, so what the stage returns is the task's clean-up of it. */
  function replying(value: unknown): LlmClient {
    const usage = { calls: 1, promptTokens: 10, completionTokens: 5 };
    return {
      role: 'strong',
      model: 'm',
      structured: async <O>() => ({ value: value as O, usage }),
      text: async () => ({ value: String(value), usage }),
    };
  }
  const stages = (value: unknown) => createStageActivities({ llm: () => replying(value), now: Date.now });
  const common = {
    strong: resolvedRoleSchema.parse({ baseURL: 'http://127.0.0.1:9/v1', model: 'm' }),
    method: methodSchema.parse({}),
  };

  test('decode returns the cleaned list', async () => {
    const out = await stages({ instructions: [' A ', 'A', 'B', 'C'] }).decodeInstructions({
      ...common,
      metadata,
      count: 2,
      batch: 1,
      label: 'decode entry 0',
    });
    expect(out.instructions).toEqual(['A', 'B']);
  });

  test('a reply the clean-up rejects fails the item for good, with its label and field', async () => {
    const err = await stages({ instruction: '   ' })
      .improveInstruction({
        ...common,
        metadata,
        instruction: 'Plan a trip.',
        action: 'Add a budget.',
        label: 'improve 3',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: LlmFailure.InvalidOutput,
      nonRetryable: true,
      message: 'improve 3: codeclm_improve output field "instruction": empty after trimming',
    });
  });
});
