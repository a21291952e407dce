/**
 * JSON with positions. JSON.parse is fast and strict but its error messages only sometimes carry a
 * position (and never a line), and it says nothing about where values start. These helpers add
 * line/column to syntax errors and find the line each top-level array element starts on, so config
 * and seed errors can point at a line a user can open in an editor.
 */

export type JsonParse =
  { ok: true; value: unknown } | { ok: false; line: number; column: number; message: string };

export function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const raw = (err as Error).message;
    const offset = errorOffset(text, raw);
    const { line, column } = lineColumn(text, offset);
    // Drop V8's "at position N" and the echoed source: we report line/column instead.
    const message = raw
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/ \(line \d+ column \d+\)$/, '');
    return { ok: false, line, column, message };
  }
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}

function errorOffset(text: string, message: string): number {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return offsetOf(text, Number(lc[1]), Number(lc[2]));
  const pos = /at position (\d+)/.exec(message);
  if (pos) return Number(pos[1]);
  if (/end of JSON input/.test(message)) return text.length;
  return locateSyntaxError(text);
}

function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl === -1) break;
    offset = nl + 1;
  }
  return offset + column - 1;
}

/**
 * The offset of the first syntax error, by a small validating scanner. Only used when V8's message
 * has no position, so it favours brevity over speed.
 */
export function locateSyntaxError(text: string): number {
  let i = 0;
  class Stop extends Error {}
  const fail = (): never => {
    throw new Stop();
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const lit = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      const ch = text[i];
      if (ch === undefined || ch < ' ') fail();
      if (ch === '"') return void i++;
      i += ch === '\\' ? 2 : 1;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (!m) fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (ch === '"') return str();
    if (ch === 't') return lit('true');
    if (ch === 'f') return lit('false');
    if (ch === 'n') return lit('null');
    return num();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return text.length;
  } catch {
    return Math.min(i, text.length);
  }
}

/**
 * The 1-based line on which each element of an array starts, in one linear pass (strings and
 * nesting are tracked so brackets inside values do not count). `depth` 1 is a top-level array;
 * depth 2 is an array that is a property of the top-level object (`{"data": [...]}`), the caller
 * making sure there is only one such array. Call only on text JSON.parse accepted.
 */
export function arrayElementLines(text: string, depth = 1): number[] {
  const lines: number[] = [];
  const stack: string[] = [];
  let line = 1;
  let inString = false;
  let expectElement = false;
  const inTargetArray = () => stack.length === depth && stack[depth - 1] === '[';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') line++;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') continue;
    if (expectElement && ch !== ']' && inTargetArray()) {
      lines.push(line);
      expectElement = false;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') {
      stack.push(ch);
      if (inTargetArray()) expectElement = true;
    } else if (ch === ']' || ch === '}') {
      stack.pop();
      expectElement = false;
    } else if (ch === ',' && inTargetArray()) expectElement = true;
  }
  return lines;
}
