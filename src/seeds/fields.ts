import type { SeedFormat } from './formats';

/**
 * Finding the instruction and the id in one record. Detection covers the public seed sets' shapes:
 * Alpaca / Self-Instruct (`instruction` + `input` or `instances[0].input`), Vicuna (`turns[0]`),
 * Koala (`prompt`), Evol-Instruct, ShareGPT (`conversations`) and OpenAI chat (`messages`), plus
 * plain `question` / `text` / `query` columns.
 */

/** Checked in order; matching ignores case, so `Instruction` and `PROMPT` are found too. */
export const INSTRUCTION_FIELDS = ['instruction', 'prompt', 'question', 'text', 'input', 'query'] as const;
/** Extra context appended to the instruction on a new line when present (and not the instruction itself). */
export const CONTEXT_FIELDS = ['input', 'context'] as const;
export const ID_FIELDS = ['id', 'idx', 'question_id', 'uid', '_id', 'task_id', 'sample_id', 'qid'] as const;

export type Extracted =
  { ok: true; instruction: string; field: string; id?: string } | { ok: false; error: string };

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The record's own key for `name`: exact match first, then case-insensitive. */
function keyFor(obj: Obj, name: string): string | undefined {
  if (Object.hasOwn(obj, name)) return name;
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** `turns.0`, `turns[0]` and `data.question` all name a path; numeric segments index arrays. */
export function splitFieldPath(field: string): string[] {
  return field
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((s) => s.length > 0);
}

function getPath(obj: unknown, segs: string[]): { found: boolean; value?: unknown } {
  let cur: unknown = obj;
  for (const seg of segs) {
    if (Array.isArray(cur) && /^\d+$/.test(seg) && Number(seg) < cur.length) cur = cur[Number(seg)];
    else if (isObj(cur) && keyFor(cur, seg) !== undefined) cur = cur[keyFor(cur, seg)!];
    else return { found: false };
  }
  return { found: true, value: cur };
}

/** The first user turn of a chat-shaped array (ShareGPT `from/value`, OpenAI `role/content`). */
function firstUserTurn(arr: unknown[], key: string): { path: string; value: unknown } | undefined {
  const idx = arr.findIndex((m) => isObj(m) && /^(user|human)$/i.test(String(m.role ?? m.from ?? '')));
  if (idx === -1) return undefined;
  const m = arr[idx] as Obj;
  const textKey = 'content' in m ? 'content' : 'value';
  return { path: `${key}.${idx}.${textKey}`, value: m[textKey] };
}

/** The instruction field by detection: its path and value, or why none was found. */
function detect(obj: Obj): { path: string; topKey: string; value: string } | { error: string } {
  const notText: string[] = [];
  for (const name of INSTRUCTION_FIELDS) {
    const key = keyFor(obj, name);
    if (key === undefined) continue;
    if (typeof obj[key] === 'string') return { path: key, topKey: key, value: obj[key] };
    notText.push(`"${key}" is ${kind(obj[key])}`);
  }
  const turnsKey = keyFor(obj, 'turns');
  if (turnsKey && Array.isArray(obj[turnsKey])) {
    const first = (obj[turnsKey] as unknown[])[0];
    if (typeof first === 'string') return { path: `${turnsKey}.0`, topKey: turnsKey, value: first };
    notText.push(`"${turnsKey}[0]" is ${first === undefined ? 'missing' : kind(first)}`);
  }
  for (const name of ['conversations', 'messages']) {
    const key = keyFor(obj, name);
    if (!key || !Array.isArray(obj[key])) continue;
    const turn = firstUserTurn(obj[key] as unknown[], key);
    if (turn && typeof turn.value === 'string') return { path: turn.path, topKey: key, value: turn.value };
    notText.push(`"${key}" has no user turn with text`);
  }
  const seen = Object.keys(obj);
  return {
    error:
      `no instruction field found (looked for ${INSTRUCTION_FIELDS.join(', ')}, turns[0], in any case); ` +
      `fields seen: ${seen.length ? seen.join(', ') : '(none)'}` +
      (notText.length ? `; ${notText.join(', ')}` : '') +
      '; choose one with --field NAME',
  };
}

function extractId(obj: Obj): { id?: string; error?: string } {
  for (const name of ID_FIELDS) {
    const key = keyFor(obj, name);
    if (key === undefined) continue;
    const v = obj[key];
    if (typeof v === 'number' && Number.isFinite(v)) return { id: String(v) };
    if (typeof v === 'string') return v.trim() ? { id: v.trim() } : {};
    if (v === null || v === undefined) return {};
    return { error: `id field "${key}" must be a string or a number, got ${kind(v)}` };
  }
  return {};
}

/** Context that belongs with the instruction: `input`/`context` fields and Self-Instruct's first instance input. */
function contextOf(obj: Obj, instructionTopKey: string): string[] {
  const parts: string[] = [];
  for (const name of CONTEXT_FIELDS) {
    const key = keyFor(obj, name);
    if (key === undefined || key === instructionTopKey) continue;
    const v = obj[key];
    if (typeof v === 'string' && v.trim()) parts.push(v.trim());
  }
  const input = firstInstanceInput(obj);
  if (input) parts.push(input);
  return parts;
}

/**
 * Self-Instruct's instance input: `instances: [{input, output}]` in the GitHub file
 * (user_oriented_instructions.jsonl), `instances: {input: [...], output: [...]}` in the Hugging Face
 * copy. Only the first instance: it completes the instruction (the text to rewrite, classify, ...).
 */
function firstInstanceInput(obj: Obj): string | undefined {
  const key = keyFor(obj, 'instances');
  if (key === undefined) return undefined;
  const instances = obj[key];
  let input: unknown;
  if (Array.isArray(instances)) {
    const first: unknown = instances[0];
    if (isObj(first)) input = first[keyFor(first, 'input') ?? 'input'];
  } else if (isObj(instances)) {
    const inputs = instances[keyFor(instances, 'input') ?? 'input'];
    input = Array.isArray(inputs) ? (inputs as unknown[])[0] : inputs;
  }
  return typeof input === 'string' && input.trim() ? input.trim() : undefined;
}

export function extractSeed(value: unknown, format: SeedFormat, field: string | undefined): Extracted {
  if (typeof value === 'string') {
    // Plain text lines, and the strings of a JSON array of strings, are instructions as they are.
    if (format === 'text' || format === 'json') {
      if (field !== undefined && format === 'json')
        return { ok: false, error: `--field ${field}: this item is a string, not an object` };
      return { ok: true, instruction: value.trim(), field: format === 'text' ? '(line)' : '(item)' };
    }
  }
  if (!isObj(value)) {
    return { ok: false, error: `expected a JSON object with an instruction field, got ${kind(value)}` };
  }
  const idPart = extractId(value);
  if (idPart.error) return { ok: false, error: idPart.error };

  let path: string;
  let topKey: string;
  let text: unknown;
  if (field !== undefined) {
    const segs = splitFieldPath(field);
    const got = getPath(value, segs);
    if (!got.found)
      return {
        ok: false,
        error: `field "${field}" not found; fields seen: ${Object.keys(value).join(', ') || '(none)'}`,
      };
    if (typeof got.value !== 'string')
      return { ok: false, error: `field "${field}" is ${kind(got.value)}, expected text` };
    path = field;
    topKey = keyFor(value, segs[0]!) ?? segs[0]!;
    text = got.value;
  } else {
    const found = detect(value);
    if ('error' in found) return { ok: false, error: found.error };
    ({ path, topKey, value: text } = found);
  }
  const instruction = [String(text).trim(), ...contextOf(value, topKey)].filter(Boolean).join('\n');
  if (!String(text).trim()) return { ok: false, error: `empty instruction (field "${path}")` };
  return { ok: true, instruction, field: path, ...(idPart.id !== undefined ? { id: idPart.id } : {}) };
}
