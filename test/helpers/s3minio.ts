import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../../src/temporal/devServer';
import { tmpDir } from './env';

/**
 * A real MinIO for the object-store tests: the binary built once into the cache
 * (~/.cache/codeclm/minio/<version>/minio, or CODECLM_MINIO), started on a free 127.0.0.1 port with
 * credentials generated per start, one bucket. `env` is what a codeclm process needs to use it the
 * AWS SDK's own way (endpoint, region, credentials).
 */
const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

export interface TestMinio {
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  /** The secret, so tests can check it never shows up anywhere. */
  secret: string;
  stop(): Promise<void>;
}

function binary(): string {
  const file =
    process.env.CODECLM_MINIO ??
    path.join(
      process.env.CODECLM_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'codeclm'),
      'minio',
      MINIO_VERSION,
      'minio',
    );
  if (!fs.existsSync(file))
    throw new Error(
      `no MinIO binary at ${file}: build it once with \`GOBIN=${path.dirname(file)} go install github.com/minio/minio@${MINIO_VERSION}\` or set CODECLM_MINIO`,
    );
  return file;
}

export async function startTestMinio(bucket = 'codeclm-test'): Promise<TestMinio> {
  const dir = tmpDir('codeclm-minio-');
  const port = await freePort();
  const consolePort = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const user = `test-${crypto.randomBytes(4).toString('hex')}`;
  const secret = crypto.randomBytes(18).toString('base64url');
  const log = fs.openSync(path.join(dir, 'minio.log'), 'a');
  const child = spawn(
    binary(),
    [
      'server',
      path.join(dir, 'data'),
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      '--quiet',
    ],
    {
      stdio: ['ignore', log, log],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        MINIO_ROOT_USER: user,
        MINIO_ROOT_PASSWORD: secret,
        MINIO_BROWSER: 'off',
      },
    },
  );
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(
        `minio exited ${child.exitCode}: ${fs.readFileSync(path.join(dir, 'minio.log'), 'utf8')}`,
      );
    try {
      const res = await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`minio did not become ready on ${endpoint} within 30 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user, secretAccessKey: secret },
  });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  return {
    endpoint,
    bucket,
    secret,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: user,
      AWS_SECRET_ACCESS_KEY: secret,
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
