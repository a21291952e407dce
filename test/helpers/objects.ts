import fs from 'node:fs';
import path from 'node:path';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import type { Minio } from '../../src/objectstore/minio';

/**
 * The cluster test's view of MinIO from outside the workers: put an input object, and copy a run's
 * objects into a local directory to check them with the same code as a local --out (the S3 store
 * keeps the local directory's layout under its prefix).
 */
export function s3ClientOf(minio: Minio): S3Client {
  const env = minio.clientEnv();
  return new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
}

export async function putObject(client: S3Client, bucket: string, key: string, body: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Every key under `prefix/`, all pages. */
export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page: ListObjectsV2CommandOutput = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Copies the objects under `prefix/` to `dir` (key `prefix/a/b` to `dir/a/b`); returns how many. */
export async function mirrorPrefix(
  client: S3Client,
  bucket: string,
  prefix: string,
  dir: string,
): Promise<number> {
  const keys = await listKeys(client, bucket, prefix);
  for (const key of keys) {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const file = path.join(dir, key.slice(prefix.length + 1));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, await got.Body!.transformToString());
  }
  return keys.length;
}
