import { LocalStore } from './local';
import { S3Store } from './s3';
import { s3ClientFor } from './s3client';
import { isS3Location, resolveLocation, type Store } from './store';

/**
 * The store of a location: `s3://bucket/prefix` is S3-compatible object storage (client from this
 * process's own AWS environment), anything else a local directory.
 */
export function openStore(location: string, env: NodeJS.ProcessEnv = process.env): Store {
  if (isS3Location(location)) return new S3Store(resolveLocation(location), s3ClientFor(env));
  return new LocalStore(location);
}

/** Reads a whole input file (seeds, benchmarks) from a path or an s3:// URL. */
export async function readLocationText(
  location: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (!isS3Location(location)) throw new Error(`not an s3:// location: ${location}`);
  const { dir, key } = splitObjectUrl(location);
  const text = await openStore(dir, env).read(key);
  if (text === undefined) throw new Error(`${location}: no such object`);
  return text;
}

/** `s3://bucket/a/b/file.jsonl` as the store of `s3://bucket/a/b` and the key `file.jsonl`. */
export function splitObjectUrl(url: string): { dir: string; key: string } {
  const resolved = resolveLocation(url);
  const slash = resolved.lastIndexOf('/');
  if (slash < 's3://'.length) throw new Error(`${url}: not an s3://bucket/key object URL`);
  return { dir: resolved.slice(0, slash), key: resolved.slice(slash + 1) };
}
