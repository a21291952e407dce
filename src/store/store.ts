import path from 'node:path';

/**
 * Where a run's files live: a local directory (the default) or S3-compatible object storage
 * (`s3://bucket/prefix`). Every file a worker reads or writes for a run goes through this interface,
 * so workers on different machines need no shared filesystem.
 *
 * Keys are relative to the store's root and always use `/` (the layout of src/store/runDir.ts with an
 * empty root). A write replaces the whole object, so writing the same key twice (a retried or
 * replayed activity) leaves one copy.
 */
export interface Store {
  /** The location as the user wrote it: an absolute directory or `s3://bucket/prefix`. */
  readonly location: string;
  /** Where `key` is, for messages and outputs (a path or an s3:// URL). Never holds credentials. */
  where(key: string): string;
  read(key: string): Promise<string | undefined>;
  readJson<T>(key: string): Promise<T | undefined>;
  write(key: string, content: string): Promise<void>;
  writeJson(key: string, value: unknown): Promise<void>;
  /** Creates `key` only if nothing is there; true when this call created it. */
  createIfAbsent(key: string, content: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Last-modified time (ms) and a tag that changes with the content; undefined when absent. */
  stat(key: string): Promise<{ modifiedMs: number; tag: string } | undefined>;
  remove(key: string): Promise<void>;
  /** Removes every key under `dir` (a key prefix ending at a `/` boundary). */
  removeAll(dir: string): Promise<void>;
  /** Every key under `dir` (recursively), sorted. Not for per-item hot paths: it pages the listing. */
  list(dir: string): Promise<string[]>;
  /** Names of the immediate sub-"directories" of `dir` (key prefixes one level down), sorted. */
  listDirs(dir: string): Promise<string[]>;
  /** The lines of `key`, streamed (a large dataset.jsonl never sits whole in memory). */
  lines(key: string): AsyncGenerator<string>;
  /** Writes `key` from a stream of chunks (a multipart upload on S3); lands whole or not at all. */
  writeStream(key: string, chunks: AsyncIterable<string>): Promise<void>;
}

export const S3_SCHEME = 's3://';

export function isS3Location(location: string): boolean {
  return location.startsWith(S3_SCHEME);
}

/** Bucket and key prefix of an `s3://bucket/prefix` location (prefix without leading/trailing `/`). */
export function parseS3Location(location: string): { bucket: string; prefix: string } {
  const rest = location.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  // S3's own bucket naming rules (3-63 lower-case letters, digits, dots, hyphens).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new Error(`${location}: not an s3://bucket/prefix location (bad bucket name "${bucket}")`);
  if (prefix.split('/').some((p) => p === '.' || p === '..'))
    throw new Error(`${location}: "." and ".." are not allowed in an S3 prefix`);
  return { bucket, prefix };
}

/**
 * The canonical form of a user's `--out`/`--seeds` value: `s3://bucket/prefix` (no trailing slash)
 * for object storage, an absolute path otherwise.
 */
export function resolveLocation(location: string): string {
  if (!isS3Location(location)) return path.resolve(location);
  const { bucket, prefix } = parseS3Location(location);
  return `${S3_SCHEME}${bucket}${prefix ? `/${prefix}` : ''}`;
}

/** A location below another one: `joinLocation('s3://b/p', 'versions', v)` or a path join. */
export function joinLocation(location: string, ...parts: string[]): string {
  if (!isS3Location(location)) return path.join(location, ...parts);
  return [location.replace(/\/+$/, ''), ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))]
    .filter(Boolean)
    .join('/');
}

/** The last part of a location (a version directory's name). */
export function baseName(location: string): string {
  return isS3Location(location) ? location.replace(/\/+$/, '').split('/').pop()! : path.basename(location);
}

/** Runs `fn` over `items`, at most `limit` at a time (object stores are slow one by one). */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(lanes);
  return out;
}

/** Objects read at once when a run is assembled (S3 answers one object per request). */
const READ_CONCURRENCY = 32;

/** Every object under `dir` parsed as JSON, in key order, a few requests in flight. */
export async function readAllJson<T>(store: Store, dir: string): Promise<T[]> {
  const keys = (await store.list(dir)).filter((k) => k.endsWith('.json'));
  const values = await mapLimit(keys, READ_CONCURRENCY, (k) => store.readJson<T>(k));
  return values.filter((v): v is Awaited<T> => v !== undefined) as T[];
}

/** Everything an async iterable yields, in order (Array.fromAsync is Node 22+). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/**
 * Every encoded seed's metadata: from the index buildPool writes (one object), else (a run that
 * stopped before its pool, or an older run) from the per-seed objects under `encodedDir`.
 */
export async function encodedMetadata<M>(store: Store, indexKey: string, encodedDir: string): Promise<M[]> {
  const text = await store.read(indexKey);
  if (text !== undefined)
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as { metadata: M }).metadata);
  return (await readAllJson<{ metadata: M }>(store, encodedDir)).map((e) => e.metadata);
}
