import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { splitLines } from './local';
import { parseS3Location, type Store } from './store';

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** A missing object. A missing bucket is a 404 too, but an error: the user named the wrong one. */
function isMissing(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(err) === 404;
}

/** Conditional PUTs answered 409 (a conflicting write in progress) asked again: ~3 s in all. */
const CONFLICT_ATTEMPTS = 6;

/**
 * S3-compatible object storage (AWS S3, MinIO, R2, GCS interoperability) under `s3://bucket/prefix`.
 * One object per key; writes are whole-object PUTs (atomic on S3), so a retried write replaces
 * itself. Exclusive creation (claims, the quality lock) uses a conditional PUT (If-None-Match: *).
 */
export class S3Store implements Store {
  readonly bucket: string;
  readonly prefix: string;

  constructor(
    readonly location: string,
    private readonly client: S3Client,
  ) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Location(location));
  }

  private objectKey(key: string): string {
    const k = key.replace(/^\/+/, '');
    return this.prefix ? (k ? `${this.prefix}/${k}` : this.prefix) : k;
  }

  where(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  private async body(key: string): Promise<Readable | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return res.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async read(key: string): Promise<string | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return await res.Body!.transformToString('utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async readJson<T>(key: string): Promise<T | undefined> {
    const text = await this.read(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async write(key: string, content: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: content,
        ContentType: contentType(key),
      }),
    );
  }

  writeJson(key: string, value: unknown): Promise<void> {
    return this.write(key, `${JSON.stringify(value, null, 2)}\n`);
  }

  async createIfAbsent(key: string, content: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            Body: content,
            IfNoneMatch: '*',
          }),
        );
        return true;
      } catch (err) {
        // 412: the object exists, so false means a caller can read who created it.
        if (statusOf(err) === 412) return false;
        // 409: a conditional write of the key is still in progress (maybe this caller's own earlier
        // attempt, which the SDK gave up on). Its outcome is unknown yet, so ask again shortly; taking
        // it as "exists" made a claim's owner read no owner and lose its own claim.
        if (statusOf(err) !== 409 || attempt >= CONFLICT_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)));
      }
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: string): Promise<{ modifiedMs: number; tag: string } | undefined> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return { modifiedMs: res.LastModified?.getTime() ?? 0, tag: res.ETag ?? '' };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async removeAll(dir: string): Promise<void> {
    const keys = await this.list(dir);
    for (let i = 0; i < keys.length; i += 1000) {
      const res = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: this.objectKey(k) })), Quiet: true },
        }),
      );
      // A batch delete answers 200 even when some keys were not deleted: those come back as Errors,
      // and a removeAll that left objects behind must not look done (its caller would build on them).
      const failed = res.Errors ?? [];
      if (failed.length) {
        const first = failed[0]!;
        throw new Error(
          `could not remove ${failed.length} object(s) under ${this.where(dir)}, ` +
            `first s3://${this.bucket}/${first.Key}: ${first.Code}: ${first.Message}`,
        );
      }
    }
  }

  async list(dir: string): Promise<string[]> {
    const base = this.objectKey(dir.replace(/\/+$/, ''));
    const prefix = base ? `${base}/` : '';
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key.slice(strip));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async listDirs(dir: string): Promise<string[]> {
    const base = this.objectKey(dir.replace(/\/+$/, ''));
    const prefix = base ? `${base}/` : '';
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix.slice(prefix.length, -1));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async *lines(key: string): AsyncGenerator<string> {
    const body = await this.body(key);
    if (!body) return;
    yield* splitLines(body);
  }

  async writeStream(key: string, chunks: AsyncIterable<string>): Promise<void> {
    // A multipart upload of 8 MiB parts, a few in flight: memory stays bounded whatever the size,
    // and the object appears only when the upload completes (an aborted upload leaves none).
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: Readable.from(chunks),
        ContentType: contentType(key),
      },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  }
}

function contentType(key: string): string | undefined {
  if (key.endsWith('.json')) return 'application/json';
  if (key.endsWith('.jsonl')) return 'application/x-ndjson';
  if (key.endsWith('.html')) return 'text/html; charset=utf-8';
  if (key.endsWith('.md')) return 'text/markdown; charset=utf-8';
  if (key.endsWith('.svg')) return 'image/svg+xml';
  return undefined;
}
