import { S3Client } from '@aws-sdk/client-s3';

/**
 * The S3 client of this process, configured the way the AWS SDK for JavaScript v3 is everywhere
 * else: endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, region from AWS_REGION (or the shared
 * config), credentials from the default provider chain (env, shared files, SSO, instance roles...).
 * Nothing here is passed in from a workflow: each worker builds its client from its own environment,
 * so credentials never enter workflow inputs or histories.
 *
 * A custom endpoint (MinIO, R2, GCS interoperability, a local gateway) gets path-style addressing
 * (`http://host/bucket/key`): MinIO on 127.0.0.1 has no per-bucket host names. With a custom endpoint
 * and no region configured anywhere, the region defaults to us-east-1 (what MinIO answers to).
 */
export function customEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.AWS_ENDPOINT_URL_S3?.trim() || env.AWS_ENDPOINT_URL?.trim() || undefined;
}

const clients = new Map<string, S3Client>();

export function s3ClientFor(env: NodeJS.ProcessEnv = process.env): S3Client {
  const endpoint = customEndpoint(env);
  const region = env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || undefined;
  // Keyed by the non-secret settings only: the credential chain is resolved (and refreshed) by the SDK.
  const key = `${endpoint ?? ''}\u0000${region ?? ''}`;
  let client = clients.get(key);
  if (!client) {
    client = new S3Client({
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(region ? { region } : endpoint ? { region: 'us-east-1' } : {}),
      // Retries of throttled/failed requests, as the SDK does them (adaptive backs off on 503 SlowDown).
      maxAttempts: 5,
    });
    clients.set(key, client);
  }
  return client;
}
