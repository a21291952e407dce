import { z } from 'zod';
import { suggest } from './suggest';

/**
 * Turns zod issues into one line per bad field, in the user's terms:
 * `roles.strong.temperature: expected number <= 2, got 5`. The raw (pre-parse) value is shown so the
 * user sees what they wrote, except for fields that may hold a secret by mistake.
 */

export type Path = readonly PropertyKey[];

export function pathString(path: Path): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

export function valueAt(root: unknown, path: Path): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** A short rendering of a value for "got ..." (never the whole of a long string). */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

/** Fields whose value must never be echoed: a key pasted where a variable name belongs. */
function mayBeSecret(path: Path): boolean {
  return (
    /key|secret|token|password/i.test(String(path[path.length - 1] ?? '')) &&
    !/^maxTokens$|^budgetTokens$/.test(String(path[path.length - 1]))
  );
}

const typeNames: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
};

/** The keys an object schema accepts at `path`, looking through defaults and optionals. */
export function knownKeys(schema: z.ZodType, path: Path): string[] {
  let cur: z.ZodType | undefined = schema;
  const unwrap = () => {
    while (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) {
      cur = cur.unwrap() as z.ZodType;
    }
  };
  unwrap();
  for (const seg of path) {
    if (!(cur instanceof z.ZodObject)) return [];
    cur = (cur.shape as Record<string, z.ZodType>)[String(seg)];
    unwrap();
  }
  return cur instanceof z.ZodObject ? Object.keys(cur.shape) : [];
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeNames[issue.expected] ?? issue.expected}`;
    case 'too_big': {
      const op = issue.inclusive ? '<=' : '<';
      if (issue.origin === 'string') return `expected at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `expected at most ${issue.maximum} items`;
      return `expected ${issue.origin ?? 'number'} ${op} ${issue.maximum}`;
    }
    case 'too_small': {
      const op = issue.inclusive ? '>=' : '>';
      if (issue.origin === 'string')
        return Number(issue.minimum) <= 1
          ? 'expected a non-empty string'
          : `expected at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `expected at least ${issue.minimum} items`;
      return `expected ${issue.origin ?? 'number'} ${op} ${issue.minimum}`;
    }
    case 'invalid_format':
      if (issue.format === 'url') return 'expected a URL such as http://127.0.0.1:8000/v1';
      return issue.message;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    case 'not_multiple_of':
      return `expected a multiple of ${issue.divisor}`;
    default:
      return issue.message;
  }
}

/**
 * One problem line per issue (several for unrecognized keys: one per key). `where(path)` may add a
 * location such as " (line 7)".
 */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  schema: z.ZodType,
  where: (path: Path) => string = () => '',
  skipKey: (key: string) => boolean = () => false,
): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = knownKeys(schema, issue.path);
      for (const key of issue.keys) {
        if (skipKey(key)) continue;
        const path = [...issue.path, key];
        const guess = suggest(key, allowed);
        const hint = guess
          ? ` (did you mean "${guess}"?)`
          : allowed.length
            ? ` (allowed: ${allowed.join(', ')})`
            : '';
        out.push(`${pathString(path)}: unknown field${hint}${where(path)}`);
      }
      continue;
    }
    const got = valueAt(raw, issue.path);
    let text = expectation(issue);
    if (issue.code === 'invalid_value' && typeof got === 'string') {
      const guess = suggest(got, issue.values.map(String));
      if (guess) text += ` (did you mean "${guess}"?)`;
    }
    const custom = issue.code === 'custom';
    const gotText = custom
      ? ''
      : got === undefined
        ? ', but it is missing'
        : mayBeSecret(issue.path)
          ? ''
          : `, got ${describeValue(got)}`;
    out.push(`${pathString(issue.path)}: ${text}${gotText}${where(issue.path)}`);
  }
  return out;
}
