import path from 'node:path';
import { mapLimit, type Store } from '../store/store';
import { openStore } from '../store/open';
import { hash32 } from '../util/random';

/**
 * The quality index of a run, in the run's store under `<out>/.work/quality/` (a local directory or
 * s3://...) so that no workflow history and no worker's memory holds it (bounded memory at any run
 * size):
 *
 *   exact/<xx>.txt         "<exact key> <id>" per kept instruction, sharded by key
 *   bands/<band>/<xx>.txt  "<bucket key> <id>" per kept instruction and LSH band, sharded by key
 *   texts/<xx>.jsonl       {"id","text"} per kept instruction, sharded by id (read back for the
 *                          similarity check of a candidate, and by later versions of a schedule)
 *   bench/<xx>.txt         "<n-gram key> <item #>" per benchmark n-gram; bench/items.jsonl the items
 *   decisions/<batch>.json the decision of each screened decode batch (a retry reads it back)
 *   lock                   one screening at a time per run (across workers: first come, first kept)
 *
 * A screening reads the shards it needs once (IndexFiles), adds lines in memory and writes back the
 * shards it changed, whole (objects cannot be appended to); the lock makes that read-modify-write
 * safe. A retried screening that crashed half-way may find its own lines already there, which
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

/** The same layout as store keys (relative to the out dir). */
export const qualityKeys = qualityPaths('');

function shard(id: string): string {
  return (hash32(id) % 256).toString(16).padStart(2, '0');
}

const WRITE_CONCURRENCY = 16;

/**
 * The index shards one screening touches: each read once from the store, lines added in memory,
 * and the changed shards written back by flush().
 */
export class IndexFiles {
  private readonly cache = new Map<string, Promise<string[]>>();
  private readonly dirty = new Set<string>();

  constructor(readonly store: Store) {}

  lines(key: string): Promise<string[]> {
    let hit = this.cache.get(key);
    if (!hit) {
      hit = this.store.read(key).then((t) => (t ? t.split('\n').filter(Boolean) : []));
      this.cache.set(key, hit);
    }
    return hit;
  }

  /** Values stored under `k` in a "<key> <value>" shard. */
  async lookup(key: string, k: string): Promise<string[]> {
    const prefix = `${k} `;
    return (await this.lines(key)).filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  }

  async append(key: string, line: string): Promise<void> {
    (await this.lines(key)).push(line);
    this.dirty.add(key);
  }

  async flush(): Promise<void> {
    const keys = [...this.dirty].sort();
    await mapLimit(keys, WRITE_CONCURRENCY, async (key) =>
      this.store.write(key, `${(await this.lines(key)).join('\n')}\n`),
    );
    this.dirty.clear();
  }
}

export async function textOf(files: IndexFiles, id: string): Promise<string | undefined> {
  for (const line of await files.lines(qualityKeys.texts(id))) {
    const rec = JSON.parse(line) as { id: string; text: string };
    if (rec.id === id) return rec.text;
  }
  return undefined;
}

/** Every stored {id, text} of an index (the instructions it kept), shard by shard. */
export async function* storedTexts(out: Store | string): AsyncGenerator<{ id: string; text: string }> {
  const store = typeof out === 'string' ? openStore(out) : out;
  for (const key of await store.list(qualityKeys.textsDir)) {
    for await (const line of store.lines(key))
      if (line) yield JSON.parse(line) as { id: string; text: string };
  }
}

export function readDecision<T>(store: Store, batch: string): Promise<T | undefined> {
  return store.readJson<T>(qualityKeys.decision(batch));
}

export function writeDecision(store: Store, batch: string, decision: unknown): Promise<void> {
  return store.writeJson(qualityKeys.decision(batch), decision);
}

const STALE_LOCK_MS = 60_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding the run's quality lock (an object created exclusively: a file opened with O_EXCL,
 * or a conditional PUT on S3), so screenings of concurrent batches, on any worker, see each other's
 * instructions. A lock left by a killed worker is taken over once it is a minute old (a screening
 * holds it for well under a second; a live holder rewrites it every quarter of that, and removes it
 * at the end only if it is still its own).
 */
export async function withLock<T>(
  store: Store,
  key: string,
  fn: () => Promise<T>,
  staleMs = STALE_LOCK_MS,
): Promise<T> {
  const me = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    if (await store.createIfAbsent(key, me)) break;
    const st = await store.stat(key);
    if (st && Date.now() - st.modifiedMs > staleMs) await store.remove(key);
    await sleep(wait + Math.floor(Math.random() * wait));
  }
  // The holder rewrites its lock while it works, so only a holder that died looks stale: a screening
  // slower than the threshold (a busy or throttled store) had its lock taken over mid-way, and two
  // read-modify-writes of the index at once lose each other's lines (a duplicate then kept).
  let refreshing: Promise<unknown> = Promise.resolve();
  const refresh = setInterval(() => {
    refreshing = refreshing
      .then(async () => {
        if ((await store.read(key)) === me) await store.write(key, me);
      })
      .catch(() => undefined);
  }, staleMs / 4);
  try {
    return await fn();
  } finally {
    clearInterval(refresh);
    await refreshing;
    // Only our own lock: one taken over (this holder stalled past the threshold) is another's now.
    if ((await store.read(key)) === me) await store.remove(key);
  }
}
