import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isScalar, LineCounter, type Node } from 'yaml';
import { InputError } from '../util/errors';
import { parseJson } from './jsonText';
import type { Path } from './issues';

/**
 * Reading a config file into a plain value, with syntax errors reported by line and column, and a
 * `where(path)` that tells on which line a field sits so schema errors can point there too.
 */

export interface RawConfig {
  raw: unknown;
  where(path: Path): string;
}

const jsonExt = new Set(['.json']);
const yamlExt = new Set(['.yaml', '.yml']);

export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${what} not found: ${file}`);
    if (code === 'EISDIR') throw new InputError(`${what} is a directory, expected a file: ${file}`);
    throw new InputError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

export function readConfigFile(file: string): RawConfig {
  const ext = path.extname(file).toLowerCase();
  if (!jsonExt.has(ext) && !yamlExt.has(ext)) {
    throw new InputError(
      `config file ${file}: unsupported extension "${ext || '(none)'}"; expected .json, .yaml or .yml`,
    );
  }
  const text = readText(file, 'config file');
  if (!text.trim())
    throw new InputError(`config file ${file} is empty; expected an object with roles, method and/or limits`);

  // YAML is a superset of JSON, so one YAML parse gives node positions for both formats.
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });

  let raw: unknown;
  if (jsonExt.has(ext)) {
    const parsed = parseJson(text);
    if (!parsed.ok) {
      throw new InputError(
        `config file ${file}: invalid JSON at line ${parsed.line}, column ${parsed.column}: ${parsed.message}`,
      );
    }
    raw = parsed.value;
  } else {
    if (doc.errors.length) {
      const problems = doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]}`;
      });
      throw new InputError(`config file ${file}: invalid YAML`, problems);
    }
    raw = doc.toJS();
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InputError(
      `config file ${file}: expected an object at the top level (roles, method, limits), got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`,
    );
  }

  const where = (p: Path): string => {
    if (doc.errors.length) return '';
    let node: unknown = doc.contents;
    let offset: number | undefined;
    for (const seg of p) {
      if (!isMap(node)) break;
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0];
      node = pair.value;
    }
    if (offset === undefined) offset = (doc.contents as Node | null)?.range?.[0];
    return offset === undefined ? '' : ` (line ${lineCounter.linePos(offset).line})`;
  };
  return { raw, where };
}
