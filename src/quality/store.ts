import fs from 'node:fs';
import path from 'node:path';
import { readJson, writeJsonAtomic } from '../store/files';
import { hash32 } from '../util/random';

/**
 * The quality index of a run, on disk under `<out>/.work/quality/` so that no workflow history and
 * no worker's memory holds it (bounded memory at any run size):
 *
 *   exact/<xx>.txt         "<exact key> <id>" per kept instruction, sharded by key
 *   bands/<band>/<xx>.txt  "<bucket key> <id>" per kept instruction and LSH band, sharded by key
 *   texts/<xx>.jsonl       {"id","text"} per kept instruction, sharded by id (read back for the
 *                          similarity check of a candidate, and by later versions of a schedule)
 *   bench/<xx>.txt         "<n-gram key> <item #>" per benchmark n-gram; bench/items.jsonl the items
 *   decisions/<batch>.json the decision of each screened decode batch (a retry reads it back)
 *   lock                   one screening at a time per run (across workers: first come, first kept)
 *
 * Lines are appended; a retried screening that crashed half-way may append a line twice, which
 * lookups tolerate (an id matching itself is ignored, repeated candidates are checked once).
 */
export function qualityPaths(outDir: string) {
  const root = path.join(outDir, '.work', 'quality');
  return {
    root,
    lock: path.join(root, 'lock'),
    exact: (key: string) => path.join(root, 'exact', `${key.slice(0, 2)}.txt`),
    band: (band: number, key: string) => path.join(root, 'bands', String(band), `${key.slice(0, 2)}.txt`),
    textsDir: path.join(root, 'texts'),
    texts: (id: string) => path.join(root, 'texts', `${shard(id)}.jsonl`),
    benchDir: path.join(root, 'bench'),
    bench: (key: string) => path.join(root, 'bench', `${key.slice(0, 2)}.txt`),
    benchItems: path.join(root, 'bench', 'items.jsonl'),
    benchManifest: path.join(root, 'bench', 'manifest.json'),
    decisionsDir: path.join(root, 'decisions'),
    decision: (batch: string) => path.join(root, 'decisions', `${batch}.json`),
    prepared: path.join(root, 'prepared.json'),
  };
}

function shard(id: string): string {
  return (hash32(id) % 256).toString(16).padStart(2, '0');
}

export function appendLine(file: string, line: string): void {
  try {
    fs.appendFileSync(file, `${line}\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.appendFileSync(file, `${line}\n`);
  }
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Values stored under `key` in a "<key> <value>" shard file. */
export function lookup(file: string, key: string): string[] {
  const prefix = `${key} `;
  return readLines(file)
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

export function textOf(outDir: string, id: string): string | undefined {
  for (const line of readLines(qualityPaths(outDir).texts(id))) {
    if (!line) continue;
    const rec = JSON.parse(line) as { id: string; text: string };
    if (rec.id === id) return rec.text;
  }
  return undefined;
}

/** Every stored {id, text} of a run's index (the instructions it kept), shard by shard. */
export function* storedTexts(outDir: string): Generator<{ id: string; text: string }> {
  const dir = qualityPaths(outDir).textsDir;
  if (!fs.existsSync(dir)) return;
  for (const f of fs.readdirSync(dir).sort()) {
    for (const line of readLines(path.join(dir, f)))
      if (line) yield JSON.parse(line) as { id: string; text: string };
  }
}

/** The lines of a file, read in 1 MiB chunks: a large dataset.jsonl never sits whole in memory. */
export function* fileLines(file: string): Generator<string> {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  let rest = '';
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const parts = (rest + buf.toString('utf8', 0, n)).split('\n');
      rest = parts.pop()!;
      yield* parts;
    }
    if (rest) yield rest;
  } finally {
    fs.closeSync(fd);
  }
}

export function readDecision<T>(outDir: string, batch: string): T | undefined {
  return readJson<T>(qualityPaths(outDir).decision(batch));
}

export function writeDecision(outDir: string, batch: string, decision: unknown): void {
  writeJsonAtomic(qualityPaths(outDir).decision(batch), decision);
}

const STALE_LOCK_MS = 60_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding the run's quality lock (a file created exclusively), so screenings of concurrent
 * batches, on any worker, see each other's instructions. A lock left by a killed worker is taken
 * over once it is a minute old (a screening holds it for milliseconds).
 */
export async function withLock<T>(file: string, fn: () => T): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(file).mtimeMs > STALE_LOCK_MS) fs.rmSync(file, { force: true });
      } catch {
        // released meanwhile
      }
      await sleep(2 + Math.floor(Math.random() * 8));
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}
