import type { z } from 'zod';
import type { RoleName } from '../schemas/config';
import { render, slotNames, type Slots } from './template';

/**
 * A pipeline stage's LLM task, distilabel-style. Each task declares its contract in one file:
 * - the typed input a stage hands it (domain values: metadata, counts, texts);
 * - `slots`, the function from that input to the named slots of its template;
 * - its template, system and user prompt, as data;
 * - `output`, the zod schema its reply must match (free text for a TextTask);
 * - `clean`, the normalisation of a schema-valid reply (trim, dedupe, cap) the stage keeps.
 *
 * Formatting (slots + template -> messages) lives here. Calling the model and parsing its reply
 * against `output` live in the LLM boundary (src/llm), which sees a task only as a Prompt. Rendered
 * prompts are part of the LLM cache key, so their text is pinned by test/prompts.snapshot.test.ts.
 */
/** 'check' is `codeclm check`'s probe of an endpoint, not a pipeline stage. */
export type Stage = 'encode' | 'decode' | 'rubrics' | 'improve' | 'answer' | 'judge' | 'check';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What the LLM boundary needs of a task: its name, its prompt templates and (if any) its schema. */
interface PromptBase {
  /** Also the json_schema name sent to the endpoint, so a server (or the simulator) can tell tasks apart. */
  name: string;
  stage: Stage;
  role: RoleName;
  system: string;
  user: string;
}

export interface StructuredPrompt<Output> extends PromptBase {
  kind: 'structured';
  output: z.ZodType<Output>;
}

export interface TextPrompt extends PromptBase {
  kind: 'text';
}

export type Prompt = StructuredPrompt<unknown> | TextPrompt;

/**
 * Where a clean-up reports what it dropped (the stages log it as an activity warning), so that
 * nothing a user would miss disappears silently.
 */
export type Note = (message: string) => void;

export interface StructuredTask<Input, Output> extends StructuredPrompt<Output> {
  /** Every slot of `system` and `user`, rendered from the input (test/prompts.test.ts checks the names). */
  slots(input: Input): Slots;
  /** Normalises a reply that already matched `output`; throws TaskOutputError when nothing usable is left. */
  clean(raw: Output, input: Input, note: Note): Output;
}

export interface TextTask<Input> extends TextPrompt {
  slots(input: Input): Slots;
  clean(raw: string, input: Input, note: Note): string;
}

/** A reply that matched the schema but is unusable after clean-up; names the task and the field. */
export class TaskOutputError extends Error {
  constructor(
    readonly task: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${task} output field "${field}": ${problem}`);
    this.name = 'TaskOutputError';
  }
}

export function messagesFor(task: PromptBase, slots: Slots): ChatMessage[] {
  return [
    { role: 'system', content: render(task.system, slots) },
    { role: 'user', content: render(task.user, slots) },
  ];
}

/** The messages a task sends for one input: formatting only, no call. */
export function renderTask<Input>(
  task: StructuredTask<Input, unknown> | TextTask<Input>,
  input: Input,
): ChatMessage[] {
  return messagesFor(task, task.slots(input));
}

/** The slot names a task's templates use, in order of first appearance. */
export function templateSlots(task: PromptBase): string[] {
  return [...new Set([...slotNames(task.system), ...slotNames(task.user)])];
}

/** Normalises a metadata phrase so that the same skill written twice counts once. */
export function normalisePhrase(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[_\-–—]+/g, ' ')
    .replace(/[^\p{L}\p{N}+#.' ]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .replace(/^[ .']+|[ .']+$/g, '');
}
