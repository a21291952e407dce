import { decodeTask, encodeTask, improveTask, judgeTask, rubricsTask, type StructuredPrompt } from '../tasks';
import { match, type Slots } from '../tasks/template';
import { checkTask } from '../tasks/check';

/**
 * Which pipeline task a chat request is. With json_schema the schema name says it; otherwise the
 * first user message is matched against each task's template (src/tasks), so the simulator reads
 * the very prompts the pipeline renders and never keeps its own copy of them.
 */
export const structuredTasks: StructuredPrompt<unknown>[] = [
  encodeTask,
  decodeTask,
  rubricsTask,
  improveTask,
  judgeTask,
  checkTask,
] as StructuredPrompt<unknown>[];

export interface ChatBodyMessage {
  role: string;
  content: unknown;
}

export interface Recognised {
  /** undefined: a free-text answer request. */
  task?: StructuredPrompt<unknown>;
  /** The template's slot values; undefined when the schema name was known but the prompt was not ours. */
  slots?: Slots;
  /** For logs: the task name, or "answer". */
  name: string;
}

/** Message content as text (the API also allows an array of parts). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p: unknown) =>
        p && typeof p === 'object' && 'text' in p && typeof p.text === 'string' ? p.text : '',
      )
      .join('');
  }
  return '';
}

/**
 * match(), tolerating text a client appended after the prompt (e.g. "reply with only JSON ..."):
 * drop trailing paragraphs one at a time until the template fits.
 */
export function matchLoose(template: string, text: string): Slots | undefined {
  let candidate = text;
  for (let i = 0; i < 5; i++) {
    const slots = match(template, candidate);
    if (slots) return slots;
    const cut = candidate.lastIndexOf('\n\n');
    if (cut < 0) return undefined;
    candidate = candidate.slice(0, cut).trimEnd();
  }
  return undefined;
}

export function recognise(messages: ChatBodyMessage[], schemaName: string | undefined): Recognised {
  const firstUser = contentText(messages.find((m) => m.role === 'user')?.content);
  const named = schemaName ? structuredTasks.find((t) => t.name === schemaName) : undefined;
  for (const task of named ? [named] : structuredTasks) {
    const slots = matchLoose(task.user, firstUser);
    if (slots) return { task, slots, name: task.name };
  }
  if (named) return { task: named, name: named.name };
  return { name: 'answer' };
}

/** Skills as the pipeline may render them: a JSON list, or a comma or semicolon separated phrase list. */
export function splitList(text: string | undefined): string[] {
  if (!text) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed.map(String).filter(Boolean);
  } catch {
    // not JSON: fall through to separators
  }
  return text
    .split(/\s*[,;\n]\s*/)
    .map((s) => s.replace(/^["'\s-]+|["'\s.]+$/g, ''))
    .filter(Boolean);
}
