import fs from 'node:fs';
import path from 'node:path';
import type { DatasetRecord } from '../../src/schemas/records';

/** `write(name, text)` into `dir`, returning the file's path: for config and seed files a test makes. */
export function writer(dir: string): (name: string, text: string) => string {
  return (name, text) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
}

export function readJsonl<T>(file: string): T[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/** A run's dataset.jsonl; empty when the run has not written one. */
export function readDataset(outDir: string): DatasetRecord[] {
  const file = path.join(outDir, 'dataset.jsonl');
  return fs.existsSync(file) ? readJsonl<DatasetRecord>(file) : [];
}
