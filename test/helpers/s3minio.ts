import { startMinio } from '../../src/objectstore/minio';

/**
 * A real MinIO for the object-store tests, started by the project's own provisioning
 * (src/objectstore/minio.ts: the binary from CODECLM_MINIO, PATH or ~/.cache/codeclm/minio, built
 * there once if missing), on a free 127.0.0.1 port with credentials generated per start and one
 * bucket. `env` is what a codeclm process needs to use it the AWS SDK's own way (endpoint, region,
 * credentials).
 */
export interface TestMinio {
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  /** The secret key, so tests can check it never shows up anywhere. */
  secret: string;
  stop(): Promise<void>;
}

export async function startTestMinio(bucket = 'codeclm-test'): Promise<TestMinio> {
  const minio = await startMinio({ bucket, log: () => undefined });
  const env = minio.clientEnv();
  return { endpoint: minio.endpoint, bucket, env, secret: env.AWS_SECRET_ACCESS_KEY!, stop: minio.stop };
}
