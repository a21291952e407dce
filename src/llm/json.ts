import { z } from 'zod';

/**
 * Lenient JSON reading for servers without json_schema support: models wrap JSON in ``` fences,
 * put a chatty sentence before it, or add commentary after it. We take the first value that parses,
 * then let the zod schema decide whether it is right.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** The end index (exclusive) of the balanced {...} or [...] starting at `start`, string-aware. */
function balancedEnd(text: string, start: number): number | undefined {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') stack.push('}');
    else if (ch === '[') stack.push(']');
    else if (ch === '}' || ch === ']') {
      if (stack.pop() !== ch) return undefined;
      if (stack.length === 0) return i + 1;
    }
  }
  return undefined;
}

function parseOnce(text: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Small models write line breaks and tabs inside JSON strings as they are (SmolLM2-135M often
 * does), which JSON forbids. The text means the same with them escaped, so they are escaped
 * instead of spending a repair call on them; nothing outside strings is touched.
 */
export function escapeControlCharsInStrings(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      if (ch === '\\') {
        out += ch + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (ch === '"') inString = false;
      else if (ch < ' ') {
        out += ESCAPES[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
        continue;
      }
    } else if (ch === '"') inString = true;
    out += ch;
  }
  return out;
}

function tryParse(text: string): Parsed<unknown> {
  const first = parseOnce(text);
  if (first.ok || !/control character/i.test(first.error)) return first;
  const escaped = parseOnce(escapeControlCharsInStrings(text));
  return escaped.ok ? escaped : first;
}

export function extractJson(reply: string): Parsed<unknown> {
  const text = reply.trim();
  if (!text) return { ok: false, error: 'the reply was empty' };
  const whole = tryParse(text);
  if (whole.ok) return whole;
  // Fenced blocks first: the model marked what it meant as the answer.
  for (const fence of text.matchAll(/```[\w-]*[ \t]*\r?\n?([\s\S]*?)```/g)) {
    const inner = tryParse(fence[1]!.trim());
    if (inner.ok) return inner;
  }
  // Then the first balanced object or array anywhere in the reply (bounded: a few candidates).
  let firstError: string | undefined;
  let tries = 0;
  for (let i = 0; i < text.length && tries < 20; i++) {
    const ch = text[i];
    if (ch !== '{' && ch !== '[') continue;
    tries++;
    const end = balancedEnd(text, i);
    if (end === undefined) {
      firstError ??= `unbalanced JSON starting at character ${i}`;
      continue;
    }
    const candidate = tryParse(text.slice(i, end));
    if (candidate.ok) return candidate;
    firstError ??= candidate.error;
  }
  return {
    ok: false,
    error: firstError ? `no valid JSON in the reply (${firstError})` : 'no JSON object in the reply',
  };
}

/** Lenient parse plus schema validation; the error text is what a repair prompt feeds back. */
export function parseStructured<O>(schema: z.ZodType<O>, reply: string): Parsed<O> {
  const parsed = extractJson(reply);
  if (!parsed.ok) return parsed;
  const checked = schema.safeParse(parsed.value);
  if (checked.success) return { ok: true, value: checked.data };
  return {
    ok: false,
    error: `the JSON does not match the schema: ${z.prettifyError(checked.error).replace(/\s*\n\s*/g, '; ')}`,
  };
}

/**
 * The JSON Schema sent as response_format. OpenAI's strict mode wants every object closed and every
 * property required (zod's output already is) and rejects some keywords, so those are dropped here;
 * zod still enforces them on the reply.
 */
export function responseJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const unsupported = new Set(['$schema', 'minLength', 'maxLength']);
  const clean = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(clean);
    if (!node || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) if (!unsupported.has(k)) out[k] = clean(v);
    if (out.type === 'object' && out.properties && typeof out.properties === 'object') {
      out.additionalProperties = false;
      out.required = Object.keys(out.properties);
    }
    return out;
  };
  return clean(z.toJSONSchema(schema)) as Record<string, unknown>;
}
