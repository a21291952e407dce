import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Store } from '../store/store';

/**
 * A content-addressed, on-disk cache of successful LLM results: one JSON file per key under a
 * two-level sharded directory (`ab/cd/<sha256>.json`). Writes are atomic (temp file + rename), so
 * several workers on one machine can share a directory: a reader sees a whole entry or none. A hit
 * refreshes the entry's mtime, and when the directory grows over its size limit the entries with the
 * oldest mtime are evicted first (least recently used, approximately).
 *
 * With a shared tier (`shared`: an s3://bucket/prefix store, or a shared directory), lookup() falls
 * back to it on a local miss (and keeps a local copy) and keep() writes every new entry to it too,
 * with the same key layout, so workers on other machines find each other's results. The shared tier
 * is not evicted here: give the bucket a lifecycle rule (expire after N days) to bound it.
 */
export interface CacheEntry<T = unknown> {
  /** Format version of the entry file. */
  v: 1;
  key: string;
  /** What the entry is for, for humans reading the directory: role, model, task. Never secret. */
  about: Record<string, string | number | undefined>;
  value: T;
  createdAt: string;
}

export interface CacheStats {
  dir: string;
  entries: number;
  bytes: number;
  maxBytes: number | null;
  oldest: string | null;
  newest: string | null;
}

/** sha256 of the canonical JSON of a value (object keys sorted at every depth). */
export function cacheKey(value: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(value)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** How often (in writes) the size limit is checked; every write would rescan the directory. */
const EVICT_CHECK_EVERY = 50;

export class CacheStore {
  readonly dir: string;
  readonly maxBytes: number | null;
  private writes = 0;
  private evicting = false;

  readonly shared?: Store;

  constructor(dir: string, opts: { maxMegabytes?: number; shared?: Store } = {}) {
    this.dir = path.resolve(dir);
    this.shared = opts.shared;
    this.maxBytes =
      opts.maxMegabytes && opts.maxMegabytes > 0 ? Math.floor(opts.maxMegabytes * 1024 * 1024) : null;
  }

  fileOf(key: string): string {
    return path.join(this.dir, CacheStore.relative(key));
  }

  /** `ab/cd/<key>.json`: the entry's place below the directory, and its key in the shared tier. */
  static relative(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a cache key: ${key}`);
    return `${key.slice(0, 2)}/${key.slice(2, 4)}/${key}.json`;
  }

  /** The entry from the local directory, else from the shared tier (then kept locally too). */
  async lookup<T>(key: string): Promise<CacheEntry<T> | undefined> {
    const local = this.get<T>(key);
    if (local || !this.shared) return local;
    let text: string | undefined;
    try {
      text = await this.shared.read(CacheStore.relative(key));
    } catch {
      return undefined; // an unreachable shared tier is a miss, never a failed call
    }
    if (text === undefined) return undefined;
    try {
      const entry = JSON.parse(text) as CacheEntry<T>;
      if (entry.v !== 1 || entry.key !== key) return undefined;
      try {
        this.putLocal(key, entry);
      } catch {
        // no local copy (full or read-only disk): the entry read is still good
      }
      return entry;
    } catch {
      return undefined;
    }
  }

  /** put() and, with a shared tier, the same entry written there (awaited; errors are the caller's). */
  async keep<T>(key: string, value: T, about: CacheEntry['about'] = {}): Promise<void> {
    const entry = this.put(key, value, about);
    if (this.shared) await this.shared.write(CacheStore.relative(key), JSON.stringify(entry));
  }

  get<T>(key: string): CacheEntry<T> | undefined {
    const file = this.fileOf(key);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const entry = JSON.parse(text) as CacheEntry<T>;
      if (entry.v !== 1 || entry.key !== key) return undefined;
      const now = new Date();
      try {
        fs.utimesSync(file, now, now);
      } catch {
        // evicted meanwhile: the value read is still good
      }
      return entry;
    } catch {
      return undefined; // a damaged entry is a miss (it is replaced by the next write)
    }
  }

  put<T>(key: string, value: T, about: CacheEntry['about'] = {}): CacheEntry<T> {
    const entry: CacheEntry<T> = { v: 1, key, about, value, createdAt: new Date().toISOString() };
    try {
      this.putLocal(key, entry);
    } catch (err) {
      // A full or read-only local disk: the shared tier (if any) still gets the entry.
      if (!this.shared) throw err;
    }
    return entry;
  }

  private putLocal(key: string, entry: CacheEntry): void {
    const file = this.fileOf(key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry));
    fs.renameSync(tmp, file);
    if (this.maxBytes !== null && ++this.writes % EVICT_CHECK_EVERY === 1) this.evict();
  }

  private files(): { file: string; size: number; mtimeMs: number }[] {
    if (!fs.existsSync(this.dir)) return [];
    const out: { file: string; size: number; mtimeMs: number }[] = [];
    for (const rel of fs.readdirSync(this.dir, { recursive: true, encoding: 'utf8' })) {
      if (!rel.endsWith('.json')) continue;
      const file = path.join(this.dir, rel);
      try {
        const st = fs.statSync(file);
        if (st.isFile()) out.push({ file, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // removed by another process meanwhile
      }
    }
    return out;
  }

  /** Removes the least recently used entries until the directory fits its size limit. */
  evict(): { removed: number; bytes: number } {
    if (this.maxBytes === null || this.evicting) return { removed: 0, bytes: 0 };
    this.evicting = true;
    try {
      const files = this.files();
      let total = files.reduce((n, f) => n + f.size, 0);
      let removed = 0;
      let freed = 0;
      if (total <= this.maxBytes) return { removed, bytes: freed };
      files.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const f of files) {
        if (total <= this.maxBytes) break;
        try {
          fs.unlinkSync(f.file);
          removed++;
          freed += f.size;
        } catch {
          // already gone
        }
        total -= f.size;
      }
      return { removed, bytes: freed };
    } finally {
      this.evicting = false;
    }
  }

  stats(): CacheStats {
    const files = this.files();
    const times = files.map((f) => f.mtimeMs).sort((a, b) => a - b);
    return {
      dir: this.dir,
      entries: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
      maxBytes: this.maxBytes,
      oldest: times.length ? new Date(times[0]!).toISOString() : null,
      newest: times.length ? new Date(times[times.length - 1]!).toISOString() : null,
    };
  }

  /** Deletes every entry (and stray temp files); the directory itself stays. */
  clear(): { removed: number; bytes: number } {
    const files = this.files();
    let bytes = 0;
    for (const f of files) {
      try {
        fs.unlinkSync(f.file);
        bytes += f.size;
      } catch {
        // already gone
      }
    }
    if (fs.existsSync(this.dir)) {
      for (const rel of fs.readdirSync(this.dir, { recursive: true, encoding: 'utf8' })) {
        if (rel.endsWith('.tmp')) fs.rmSync(path.join(this.dir, rel), { force: true });
      }
    }
    return { removed: files.length, bytes };
  }
}
