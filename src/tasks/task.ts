import type { z } from 'zod';
import type { RoleName } from '../schemas/config';
import { render, type Slots } from './template';

/**
 * A pipeline stage's LLM task, distilabel-style: what it takes (slots), what it must return (a zod
 * schema, or free text), and its prompt as data. Formatting lives here; calling and parsing live in
 * the LLM boundary (src/llm).
 */
/** 'check' is `codeclm check`'s probe of an endpoint, not a pipeline stage. */
export type Stage = 'encode' | 'decode' | 'rubrics' | 'improve' | 'answer' | 'judge' | 'check';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

interface TaskBase {
  /** Also the json_schema name sent to the endpoint, so a server (or the simulator) can tell tasks apart. */
  name: string;
  stage: Stage;
  role: RoleName;
  system: string;
  user: string;
}

export interface StructuredTask<O> extends TaskBase {
  kind: 'structured';
  output: z.ZodType<O>;
}

export interface TextTask extends TaskBase {
  kind: 'text';
}

export type Task = StructuredTask<unknown> | TextTask;

export function messagesFor(task: TaskBase, slots: Slots): ChatMessage[] {
  return [
    { role: 'system', content: render(task.system, slots) },
    { role: 'user', content: render(task.user, slots) },
  ];
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
