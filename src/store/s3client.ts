import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { noteInLog } from '../temporal/logging';

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
    client = newS3Client({
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(region ? { region } : endpoint ? { region: 'us-east-1' } : {}),
      // Retries of throttled and failed requests in the SDK's standard mode (503 SlowDown included).
      maxAttempts: 5,
    });
    clients.set(key, client);
  }
  return client;
}

/** The AWS SDK's own switch for its Node-version notice (it reads process.env at client creation). */
export const SDK_NODE_NOTICE_VAR = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
/** The Node major version the SDK's releases after early January 2027 require (its notice's threshold). */
const SDK_NODE_MAJOR = 22;
let noted = false;

/**
 * `new S3Client(config)` without the SDK's NodeVersionSupportWarning in the user's terminal. On Node
 * below 22 the SDK prints a nine-line process warning once per process, into the middle of a
 * command's output. A codeclm user cannot act on it there (the SDK version comes with codeclm's lock
 * file), so codeclm turns it off with the SDK's own variable for the creation of its first client
 * (the SDK then marks it shown, for every later client of the process, STS and SSO ones included) and
 * writes one line to the log file instead. Only this notice: Node's other warnings are untouched. A
 * user who sets the variable (to anything) decides: `false` shows the SDK's notice again.
 */
export function newS3Client(config: S3ClientConfig): S3Client {
  if (process.env[SDK_NODE_NOTICE_VAR] !== undefined) return new S3Client(config);
  process.env[SDK_NODE_NOTICE_VAR] = 'true';
  try {
    return new S3Client(config);
  } finally {
    delete process.env[SDK_NODE_NOTICE_VAR];
    if (Number(process.versions.node.split('.')[0]) < SDK_NODE_MAJOR && !noted) {
      noted = true;
      noteInLog(
        `AWS SDK for JavaScript v3: its releases after the first week of January 2027 require Node >= ${SDK_NODE_MAJOR}; ` +
          `this is Node ${process.version} (the SDK's NodeVersionSupportWarning, kept out of the terminal; ` +
          `${SDK_NODE_NOTICE_VAR}=false shows it)`,
      );
    }
  }
}
