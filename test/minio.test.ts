import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { findMinio, MinioSetupError, startMinio, type Minio } from '../src/objectstore/minio';
import { tmpDir } from './helpers/env';

/**
 * MinIO as the cluster test and the native recipe start it (src/objectstore/minio.ts): the cached
 * binary (CI builds it in .ci/run), a free port, generated root credentials that reach no log, the
 * bucket created, objects written and read back through the AWS SDK with path-style addressing.
 */
describe('MinIO for the cluster', () => {
  let minio: Minio;
  beforeAll(async () => {
    minio = await startMinio({ bucket: 'codeclm-test', log: () => {}, allowBuild: !process.env.CI });
  }, 10 * 60_000);
  afterAll(async () => {
    await minio?.stop();
    if (minio) fs.rmSync(minio.dir, { recursive: true, force: true });
  });

  test('serves the bucket through the AWS SDK with the generated credentials, which no log shows', async () => {
    const env = minio.clientEnv();
    expect(env.AWS_ENDPOINT_URL_S3).toBe(minio.endpoint);
    expect(env.AWS_SECRET_ACCESS_KEY.length).toBeGreaterThanOrEqual(24);
    const client = new S3Client({
      endpoint: env.AWS_ENDPOINT_URL_S3,
      region: env.AWS_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    });
    try {
      await client.send(new PutObjectCommand({ Bucket: 'codeclm-test', Key: 'a/b.json', Body: '{"x":1}' }));
      const got = await client.send(new GetObjectCommand({ Bucket: 'codeclm-test', Key: 'a/b.json' }));
      expect(await got.Body!.transformToString()).toBe('{"x":1}');
      // Wrong credentials are refused: the store is not open to anyone on the machine.
      const stranger = new S3Client({
        endpoint: env.AWS_ENDPOINT_URL_S3,
        region: env.AWS_REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: 'not-the-password' },
      });
      await expect(
        stranger.send(new GetObjectCommand({ Bucket: 'codeclm-test', Key: 'a/b.json' })),
      ).rejects.toThrow(/signature/i);
      stranger.destroy();
    } finally {
      client.destroy();
    }
    const log = fs.readFileSync(minio.logFile, 'utf8');
    expect(log).not.toContain(env.AWS_SECRET_ACCESS_KEY);
    expect(log).not.toContain(env.AWS_ACCESS_KEY_ID);
    // The credentials file beside the data is the owner's only.
    expect(fs.statSync(path.join(minio.dir, '.minio-credentials')).mode & 0o077).toBe(0);
  });

  test('a CODECLM_MINIO that is not MinIO is an error naming the variable', () => {
    const fake = path.join(tmpDir('codeclm-fake-minio-'), 'minio');
    fs.writeFileSync(fake, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    expect(() => findMinio({ ...process.env, CODECLM_MINIO: fake })).toThrow(MinioSetupError);
    expect(() => findMinio({ ...process.env, CODECLM_MINIO: fake })).toThrow(
      `CODECLM_MINIO=${fake} is not a MinIO server binary`,
    );
  });
});
