/**
 * Fault injection: a script of next responses (tests pin exact faults), a rolling requests-per-minute
 * window, and the malformed-output shapes real servers produce.
 */
export type MalformedKind = 'broken' | 'fenced' | 'chatty';

export interface ScriptItem {
  /** Answer with this HTTP error status (OpenAI-style error body). */
  status?: number;
  /** 429/503: Retry-After header in seconds; retryAfterMs sets retry-after-ms instead. */
  retryAfter?: number;
  retryAfterMs?: number;
  /** Error code in the body, e.g. "context_length_exceeded". */
  code?: string;
  message?: string;
  /** Destroy the socket without answering (a connection reset). */
  reset?: boolean;
  malformed?: MalformedKind;
  /** Cut the reply and report finish_reason "length". */
  truncate?: boolean;
  /** Reply with exactly this content (finish_reason "stop" unless truncate is set). */
  content?: string;
  /** Extra latency before this response, in ms. */
  delayMs?: number;
  /** Only requests for this model / task ("encode" or "codeclm_encode", "answer") consume this item. */
  model?: string;
  task?: string;
}

const SCRIPT_KEYS = new Set([
  'status',
  'retryAfter',
  'retryAfterMs',
  'code',
  'message',
  'reset',
  'malformed',
  'truncate',
  'content',
  'delayMs',
  'model',
  'task',
]);

/** Validates a POSTed script (a list, or {items: list}); throws with a readable reason. */
export function parseScript(body: unknown): ScriptItem[] {
  const list = Array.isArray(body)
    ? body
    : body && typeof body === 'object' && Array.isArray((body as { items?: unknown }).items)
      ? (body as { items: unknown[] }).items
      : undefined;
  if (!list) throw new Error('expected a JSON list of script items (or {"items": [...]})');
  return list.map((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new Error(`item ${i}: expected an object`);
    const item = raw as Record<string, unknown>;
    const unknownKeys = Object.keys(item).filter((k) => !SCRIPT_KEYS.has(k));
    if (unknownKeys.length) throw new Error(`item ${i}: unknown key(s) ${unknownKeys.join(', ')}`);
    if (
      item.status !== undefined &&
      (!Number.isInteger(item.status) || (item.status as number) < 400 || (item.status as number) > 599)
    ) {
      throw new Error(`item ${i}: status must be an HTTP error status (400-599)`);
    }
    if (item.malformed !== undefined && !['broken', 'fenced', 'chatty'].includes(item.malformed as string)) {
      throw new Error(`item ${i}: malformed must be "broken", "fenced" or "chatty"`);
    }
    return item as ScriptItem;
  });
}

export function scriptMatches(item: ScriptItem, model: string, task: string): boolean {
  if (item.model !== undefined && item.model !== model) return false;
  if (item.task !== undefined && item.task !== task && `codeclm_${item.task}` !== task) return false;
  return true;
}

/** Requests accepted in the last 60 s; over the cap, the seconds until the oldest one leaves the window. */
export class RpmWindow {
  private times: number[] = [];
  constructor(private readonly rpm: number | undefined) {}

  /** undefined: admitted (and recorded); a number: rejected, retry after that many seconds. */
  admit(now: number): number | undefined {
    if (!this.rpm) return undefined;
    while (this.times.length && this.times[0]! <= now - 60_000) this.times.shift();
    if (this.times.length >= this.rpm) return Math.max(1, Math.ceil((this.times[0]! + 60_000 - now) / 1000));
    this.times.push(now);
    return undefined;
  }

  reset(): void {
    this.times = [];
  }
}

/** Breaks a JSON reply the way chatty or sloppy models do. */
export function malform(content: string, kind: MalformedKind): string {
  switch (kind) {
    case 'fenced':
      return `Sure! Here is the JSON you asked for:\n\n\`\`\`json\n${content}\n\`\`\`\n\nLet me know if you need anything else.`;
    case 'chatty':
      return `Here is my answer: ${content} I hope this is what you were looking for.`;
    case 'broken':
      // Cut mid-way and drop the closing brackets: unparseable by any lenient reader.
      return (
        `${content.slice(0, Math.max(2, Math.floor(content.length * 0.6)))}`.replace(/[}\]]+$/, '') + ',"'
      );
  }
}

/** A reply cut off mid-way, as a server does at max_tokens. */
export function truncate(content: string, maxChars?: number): string {
  const cut =
    maxChars !== undefined ? Math.min(maxChars, content.length - 1) : Math.floor(content.length / 2);
  return content.slice(0, Math.max(1, cut));
}
