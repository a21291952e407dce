import path from 'node:path';
import { arrayElementLines, lineColumn, parseJson } from '../config/jsonText';
import { InputError } from '../util/errors';
import { isBlankRecord, parseDelimited } from './csv';
import { extractSeed } from './fields';

/**
 * Splitting a seed file into raw records, one per line (or per array element / CSV row), each with
 * the line it starts on. Field detection happens later on these values; here only the container
 * format matters. Problems with one record are returned on it so they can all be listed at once;
 * problems with the whole file (bad JSON array, bad CSV header) throw.
 */

export const seedFormats = ['jsonl', 'json', 'csv', 'tsv', 'text'] as const;
export type SeedFormat = (typeof seedFormats)[number];

export interface RawEntry {
  line: number;
  /** The line as shown in origins and generated ids: "12", or "12.2" for the 2nd element on line 12. */
  label: string;
  value?: unknown;
  error?: string;
}

export interface RawRecords {
  format: SeedFormat;
  entries: RawEntry[];
  warnings: string[];
}

/** The format an extension promises; content can still overrule it (see readRecords). */
export function formatFromExtension(file: string): SeedFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.txt') return 'text';
  return undefined;
}

function firstChar(text: string): string {
  const m = /\S/.exec(text);
  return m ? m[0] : '';
}

export function readRecords(file: string, text: string): RawRecords {
  const byExt = formatFromExtension(file);
  const first = firstChar(text);
  // Content decides where the extension is silent, and rescues the common mix-ups: a JSON array
  // saved as .jsonl, or JSON Lines saved as .json.
  if (byExt === 'jsonl' && first === '[') {
    const whole = parseJson(text);
    if (whole.ok && Array.isArray(whole.value))
      return fromJsonValue(file, text, whole.value, [
        'holds a JSON array; reading it as JSON, not JSON Lines',
      ]);
  }
  // Without an extension, an object on the first line alone means JSON Lines.
  if (byExt === undefined && first === '{' && looksLikeJsonLines(text)) return fromJsonLines(text);
  if (byExt === 'json' || (byExt === undefined && (first === '[' || first === '{'))) {
    const whole = parseJson(text);
    if (whole.ok) return fromJsonValue(file, text, whole.value, []);
    if (first === '{' && looksLikeJsonLines(text)) {
      return {
        ...fromJsonLines(text),
        warnings:
          byExt === 'json' ? [`${file} holds JSON Lines (one object per line); reading it as JSONL`] : [],
      };
    }
    throw new InputError(
      `seed file ${file}:${whole.line}: invalid JSON at column ${whole.column}: ${whole.message}`,
    );
  }
  if (byExt === 'jsonl') return fromJsonLines(text);
  if (byExt === 'csv' || byExt === 'tsv') return fromDelimited(file, text, byExt);
  return fromText(text);
}

function looksLikeJsonLines(text: string): boolean {
  const nl = text.indexOf('\n', text.indexOf('{'));
  const firstLine = text.slice(text.indexOf('{'), nl === -1 ? text.length : nl);
  const parsed = parseJson(firstLine);
  return parsed.ok && typeof parsed.value === 'object' && parsed.value !== null;
}

/** Lines with their 1-based numbers, without building a copy per line beyond the split itself. */
function lines(text: string): string[] {
  return text.split('\n');
}

function fromJsonLines(text: string): RawRecords {
  const entries: RawEntry[] = [];
  lines(text).forEach((raw, idx) => {
    const line = idx + 1;
    const s = raw.trim();
    if (!s) return;
    const parsed = parseJson(s);
    entries.push(
      parsed.ok
        ? { line, label: String(line), value: parsed.value }
        : {
            line,
            label: String(line),
            error: `invalid JSON at column ${parsed.column + raw.indexOf(s[0]!)}: ${parsed.message}`,
          },
    );
  });
  return { format: 'jsonl', entries, warnings: [] };
}

function fromJsonValue(file: string, text: string, value: unknown, notes: string[]): RawRecords {
  const warnings = notes.map((n) => `${file} ${n}`);
  let items: unknown[];
  let depth = 1;
  if (Array.isArray(value)) items = value;
  else if (value !== null && typeof value === 'object') {
    // One object is either a single seed (possibly a one-line JSONL file) or a wrapper such as
    // {"questions": [...]}: a wrapper when it is not itself a seed and has exactly one array.
    const arrays = Object.entries(value).filter(([, v]) => Array.isArray(v));
    if (extractSeed(value, 'json', undefined).ok || arrays.length === 0) {
      const line = lineColumn(text, text.indexOf('{')).line;
      return { format: 'json', entries: [{ line, label: String(line), value }], warnings };
    }
    if (arrays.length > 1) {
      throw new InputError(
        `seed file ${file}: expected a JSON array of seed objects; the top-level object has several arrays (${arrays.map(([k]) => k).join(', ')}) and it is unclear which holds the seeds`,
      );
    }
    const [key, arr] = arrays[0]!;
    items = arr as unknown[];
    depth = 2;
    warnings.push(`${file}: using the array under "${key}" as the seeds`);
  } else {
    throw new InputError(
      `seed file ${file}: expected a JSON array of seed objects, got ${value === null ? 'null' : typeof value}`,
    );
  }
  const starts = arrayElementLines(text, depth);
  // Several elements can start on one line (a minified file): number them within the line.
  const perLine = new Map<number, number>();
  for (const l of starts) perLine.set(l, (perLine.get(l) ?? 0) + 1);
  const seen = new Map<number, number>();
  const entries = items.map((item, idx): RawEntry => {
    const line = starts[idx] ?? 1;
    const k = (seen.get(line) ?? 0) + 1;
    seen.set(line, k);
    const label = (perLine.get(line) ?? 1) > 1 ? `${line}.${k}` : String(line);
    return { line, label, value: item };
  });
  return { format: 'json', entries, warnings };
}

function fromDelimited(file: string, text: string, format: 'csv' | 'tsv'): RawRecords {
  const records = parseDelimited(text, format === 'csv' ? ',' : '\t').filter((r) => !isBlankRecord(r));
  const header = records.shift();
  if (!header) return { format, entries: [], warnings: [] };
  if (header.error) throw new InputError(`seed file ${file}:${header.line}: ${header.error}`);
  const names = header.fields.map((f) => f.trim());
  const seenNames = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (!name)
      throw new InputError(
        `seed file ${file}:${header.line}: column ${i + 1} of the header row has no name (the first row must name the columns)`,
      );
    if (seenNames.has(name))
      throw new InputError(
        `seed file ${file}:${header.line}: column "${name}" appears twice in the header row`,
      );
    seenNames.add(name);
  }
  const entries = records.map((r): RawEntry => {
    const base = { line: r.line, label: String(r.line) };
    if (r.error) return { ...base, error: r.error };
    if (r.fields.length !== names.length) {
      return {
        ...base,
        error: `expected ${names.length} columns as in the header row, got ${r.fields.length} (a field containing ${format === 'csv' ? 'a comma' : 'a tab'} must be quoted)`,
      };
    }
    const value: Record<string, string> = {};
    names.forEach((name, i) => (value[name] = r.fields[i]!));
    return { ...base, value };
  });
  return { format, entries, warnings: [] };
}

function fromText(text: string): RawRecords {
  const entries: RawEntry[] = [];
  lines(text).forEach((raw, idx) => {
    const s = raw.trim();
    if (s) entries.push({ line: idx + 1, label: String(idx + 1), value: s });
  });
  return { format: 'text', entries, warnings: [] };
}
