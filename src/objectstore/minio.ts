import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { freePort } from '../temporal/devServer';
import { newS3Client } from '../store/s3client';
import { candidatesOnPath, codeclmCacheRoot } from '../temporal/provision';
import { goInstallIntoCache } from '../util/goInstall';
import { superviseUntilReady, type ProcessExit } from '../util/supervise';

/**
 * MinIO, the S3-compatible object store of the native cluster and the cluster test (issue 13).
 *
 * The binary: CODECLM_MINIO, else `minio` on PATH, else the cache
 * (~/.cache/codeclm/minio/<version>/minio; CODECLM_CACHE_DIR or XDG_CACHE_HOME move it), else built
 * there once with `go install github.com/minio/minio@<version>` (MinIO's release tags are not
 * served by the Go proxy; this pseudo-version is a commit of its main branch; about 4 minutes).
 *
 * The server: 127.0.0.1 on a free port, data in a directory of its own, root credentials generated
 * per start (or kept beside the data for a restart), passed by environment only and never logged;
 * ready when /minio/health/ready answers 200; one bucket created.
 */
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';
const MINIO_MODULE = 'github.com/minio/minio';

export class MinioSetupError extends Error {
  override name = 'MinioSetupError';
}

export function minioCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'minio', MINIO_VERSION);
}

/** A file that runs and says it is MinIO's server (`minio --version` starts "minio version"). */
function isMinio(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return false;
  }
  const out = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return out.status === 0 && /^minio version/m.test(out.stdout);
}

export interface FoundMinio {
  path: string;
  from: 'CODECLM_MINIO' | 'PATH' | 'cache' | 'built';
}

/** The routes in order; undefined when none has a working binary. Throws on a bad CODECLM_MINIO. */
export function findMinio(env: NodeJS.ProcessEnv = process.env): FoundMinio | undefined {
  if (env.CODECLM_MINIO) {
    if (isMinio(env.CODECLM_MINIO)) return { path: env.CODECLM_MINIO, from: 'CODECLM_MINIO' };
    throw new MinioSetupError(
      `CODECLM_MINIO=${env.CODECLM_MINIO} is not a MinIO server binary (missing, not executable, or ` +
        '`--version` does not say "minio version")',
    );
  }
  const fromPath = candidatesOnPath(env, 'minio')[0];
  if (fromPath && isMinio(fromPath)) return { path: fromPath, from: 'PATH' };
  const cached = path.join(minioCacheDir(env), 'minio');
  if (isMinio(cached)) return { path: cached, from: 'cache' };
  return undefined;
}

export interface ProvisionMinioOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** false: never build (fail when no binary is found). */
  allowBuild?: boolean;
}

/** A MinIO binary: found by the routes above, or built into the cache with go. */
export function provisionMinio(opts: ProvisionMinioOptions = {}): FoundMinio {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const found = findMinio(env);
  if (found) return found;
  const target = path.join(minioCacheDir(env), 'minio');
  if (opts.allowBuild === false)
    throw new MinioSetupError(
      `no MinIO server binary (CODECLM_MINIO unset, none on PATH, ${target} missing); build it once with ` +
        '`temporal-docker/native/cluster provision` (needs go) or set CODECLM_MINIO',
    );
  const go = {
    env,
    log,
    what: 'building MinIO',
    hint: ' or set CODECLM_MINIO',
    fail: (m: string) => new MinioSetupError(m),
  };
  goInstallIntoCache([`${MINIO_MODULE}@${MINIO_VERSION}`], path.dirname(target), go, (gobin) =>
    fs.renameSync(path.join(gobin, 'minio'), target),
  );
  if (!isMinio(target)) throw new MinioSetupError(`built MinIO, but ${target} does not run`);
  log(`codeclm:   MinIO ready at ${target}`);
  return { path: target, from: 'built' };
}

export interface MinioOptions {
  /** State directory: data in <dir>/data, log in <dir>/minio.log. Default: a new temp dir. */
  dir?: string;
  /** S3 API port on 127.0.0.1. Default: a free one. */
  port?: number;
  /** Created when missing. */
  bucket?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  allowBuild?: boolean;
  startTimeoutMs?: number;
}

export interface Minio {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  region: string;
  dir: string;
  logFile: string;
  process: ChildProcess;
  exited: Promise<ProcessExit>;
  /**
   * What a process needs to use this store through the AWS SDK's own configuration: the endpoint,
   * region and the root credentials. Give it to child processes' environments; never print it.
   */
  clientEnv(): Record<string, string>;
  /** SIGTERM, SIGKILL after 10 s. Safe to call more than once. */
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
}

/** Generated once per state directory, kept there (mode 0600) so a restart uses the same ones. */
function credentialsFor(dir: string): Credentials {
  const file = path.join(dir, '.minio-credentials');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as Credentials;
  const creds = {
    user: `codeclm-${crypto.randomBytes(6).toString('hex')}`,
    password: crypto.randomBytes(24).toString('base64url'),
  };
  fs.writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

async function ready(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function startMinio(opts: MinioOptions = {}): Promise<Minio> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binary = provisionMinio({ env, log, allowBuild: opts.allowBuild });
  const dir = path.resolve(opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-minio-')));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(dir, 'minio.log');
  const creds = credentialsFor(dir);
  const port = opts.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const bucket = opts.bucket ?? 'codeclm';
  const region = 'us-east-1';

  const out = fs.openSync(logFile, 'a');
  // --quiet: no start-up banner (it can show the root user). The console (web UI) stays off.
  const child = spawn(
    binary.path,
    [
      'server',
      dataDir,
      '--address',
      `127.0.0.1:${port}`,
      '--certs-dir',
      path.join(dir, 'certs'),
      '--quiet',
      '--anonymous',
    ],
    {
      stdio: ['ignore', out, out],
      cwd: dir,
      env: {
        PATH: env.PATH ?? '',
        HOME: env.HOME ?? dir,
        MINIO_ROOT_USER: creds.user,
        MINIO_ROOT_PASSWORD: creds.password,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
        MINIO_REGION: region,
      },
    },
  );
  fs.closeSync(out);
  log(`codeclm:   $ minio server ${dataDir} --address 127.0.0.1:${port} (${binary.path}, ${binary.from})`);
  const supervised = await superviseUntilReady(child, {
    name: 'minio',
    logFile,
    ready: () => ready(endpoint),
    where: endpoint,
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    pollMs: 200,
    stopGraceMs: 10_000,
    error: (message) => new MinioSetupError(message),
  });

  // The SDK's Node-version notice kept out of the terminal, as for every codeclm S3 client.
  const client = newS3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: creds.user, secretAccessKey: creds.password },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') {
      await supervised.stop();
      throw new MinioSetupError(`creating bucket ${bucket} on ${endpoint} failed: ${(err as Error).message}`);
    }
  } finally {
    client.destroy();
  }
  log(`codeclm:   MinIO on ${endpoint}, bucket ${bucket} (data in ${dataDir})`);

  return {
    endpoint,
    bucket,
    region,
    dir,
    logFile,
    process: child,
    exited: supervised.exited,
    clientEnv: () => ({
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: creds.user,
      AWS_SECRET_ACCESS_KEY: creds.password,
    }),
    stop: supervised.stop,
  };
}
