import {
  answerStrongTask,
  answerTargetTask,
  decodeTask,
  encodeTask,
  improveTask,
  judgeTask,
  messagesFor,
  rubricsTask,
  type Task,
} from '../src/tasks';
import { slotNames } from '../src/tasks/template';

/**
 * Prompts must not hand a weak model a phrase to copy (issue 12: a 135M model put the encode prompt's
 * example skill, "budget estimation", into the metadata of every seed). No prompt of the pipeline
 * carries a quoted example answer; the form of an answer is described in words.
 */
const tasks: Task[] = [
  encodeTask,
  decodeTask,
  rubricsTask,
  improveTask,
  answerStrongTask,
  answerTargetTask,
  judgeTask,
];

/** A quoted phrase introduced as an example ("for example", "e.g.", "such as", "like"). */
const QUOTED_EXAMPLE = /\b(for example|for instance|e\.g\.|such as|like)\s*[:(]?\s*["“'][^"”']+["”']/i;

describe('prompts', () => {
  test.each(tasks.map((t) => [t.name, t] as const))('%s gives no quoted example to copy', (_, task) => {
    const slots = Object.fromEntries(
      [...slotNames(task.system), ...slotNames(task.user)].map((n) => [n, `<${n}>`]),
    );
    for (const m of messagesFor(task, slots)) {
      expect(m.content).not.toMatch(QUOTED_EXAMPLE);
      // The phrases the old prompts offered, which weak models echoed.
      expect(m.content).not.toMatch(/budget estimation|trip itinerary planning|add a constraint that/i);
    }
  });

  test('the check catches the kind of example the encode prompt used to give', () => {
    expect('each a phrase (for example "budget estimation")').toMatch(QUOTED_EXAMPLE);
    expect('an action (for example "add a constraint that the answer must ...")').toMatch(QUOTED_EXAMPLE);
  });

  test('encode still asks for the use case, at most K skills, and shows the instruction', () => {
    const [system, user] = messagesFor(encodeTask, { max_skills: '3', instruction: 'Plan a picnic.' });
    expect(system!.content).toMatch(/use case/);
    expect(user!.content).toMatch(/use_case: .*noun phrase/);
    expect(user!.content).toMatch(/at most 3 skills/);
    expect(user!.content).toContain('<instruction>\nPlan a picnic.\n</instruction>');
  });
});
