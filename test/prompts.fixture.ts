import {
  answerStrongTask,
  answerTargetTask,
  checkTask,
  decodeTask,
  encodeTask,
  improveTask,
  judgeTask,
  rubricsTask,
  type StructuredTask,
  type TextTask,
} from '../src/tasks';

/**
 * Every task of src/tasks with an input as a stage would hand it. The input text carries quotes, an
 * ampersand and a line break, so a change in escaping or joining shows up in the snapshots too.
 */
const metadata = { use_case: 'family travel planning', skills: ['itinerary design', 'budget arithmetic'] };
const instruction =
  'Plan a three-day trip to Lisbon for a family of four.\nKeep the total under "1 500 EUR" & list costs.';

// The tasks differ in input type; the table only ever pairs each task with its own input.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTask = StructuredTask<any, unknown> | TextTask<any>;

export interface TaskCase {
  /** The snapshot's name: the task's name, plus what sets this input apart when a task has two. */
  name: string;
  task: AnyTask;
  input: unknown;
}

export const taskCases: TaskCase[] = [
  { name: 'codeclm_encode', task: encodeTask, input: { instruction, maxSkills: 3 } },
  {
    name: 'codeclm_decode batch 1',
    task: decodeTask,
    input: { metadata, count: 5, batch: 1, maxChars: 100 },
  },
  {
    name: 'codeclm_decode batch 2',
    task: decodeTask,
    input: { metadata, count: 4, batch: 2, maxChars: 100 },
  },
  { name: 'codeclm_rubrics', task: rubricsTask, input: { metadata, count: 3 } },
  {
    name: 'codeclm_improve',
    task: improveTask,
    input: {
      useCase: metadata.use_case,
      action: 'Add a constraint on the walking distance per day.',
      instruction,
    },
  },
  { name: 'codeclm_answer_strong', task: answerStrongTask, input: { instruction } },
  { name: 'codeclm_answer_target', task: answerTargetTask, input: { instruction } },
  {
    name: 'codeclm_judge',
    task: judgeTask,
    input: { instruction, answerA: 'Day 1: Alfama.\nDay 2: Belém.', answerB: 'Go to Porto instead.' },
  },
  { name: 'codeclm_check', task: checkTask, input: undefined },
];
