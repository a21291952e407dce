import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/nested-clients/sts';
import { checkBatchSpools, claimRunOut, prefetchRunInputs } from '../src/cli/run';
import { loadConfig } from '../src/config/load';
import { openStore } from '../src/store/open';
import { S3Store } from '../src/store/s3';
import { InputError } from '../src/util/errors';
import { saveAwsEnv, tmpDir } from './helpers/env';
import { startTestMinio, type TestMinio } from './helpers/s3minio';

/**
 * The S3 store on a real MinIO with one fault put between the store and the server (answers S3
 * gives under load or races that MinIO will not give on demand), or with credentials that may not do
 * everything a run does: the store must not report success for work the server did not do, nor
 * failure for work it did, and the CLI must find out before a run starts.
 */
let minio: TestMinio;

beforeAll(async () => {
  minio = await startTestMinio();
}, 60_000);

afterAll(async () => {
  await minio?.stop();
});

const location = (name: string) => `s3://${minio.bucket}/${name}-${crypto.randomBytes(3).toString('hex')}`;

type Send = (command: unknown) => Promise<unknown>;

/** A client of the MinIO whose requests go through `fault` first (it may answer instead of MinIO). */
function clientWith(fault: (command: unknown, send: Send) => Promise<unknown> | undefined): S3Client {
  const client = new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.env.AWS_ACCESS_KEY_ID!, secretAccessKey: minio.secret },
  });
  const send = client.send.bind(client) as Send;
  (client as unknown as { send: Send }).send = (command) => fault(command, send) ?? send(command);
  return client;
}

test('removeAll fails when S3 refuses to delete some of the keys (a quiet batch delete reports them)', async () => {
  const out = location('remove');
  let failOne = true;
  const store = new S3Store(
    out,
    clientWith((command, send) => {
      if (!(command instanceof DeleteObjectsCommand) || !failOne) return undefined;
      // S3 answers 200 with per-key errors (InternalError, AccessDenied under an object lock...).
      const [stuck, ...rest] = command.input.Delete!.Objects!;
      return send(
        new DeleteObjectsCommand({ ...command.input, Delete: { ...command.input.Delete, Objects: rest } }),
      ).then((res) => ({
        ...(res as object),
        Errors: [{ Key: stuck!.Key, Code: 'InternalError', Message: 'We encountered an internal error.' }],
      }));
    }),
  );
  for (const k of ['d/1.json', 'd/2.json', 'd/3.json']) await store.write(k, '{}');
  await expect(store.removeAll('d')).rejects.toThrow(`${out}/d/1.json: InternalError`);
  expect(await store.list('d')).toEqual(['d/1.json']);
  // Retried (as the activity is), it finishes the job.
  failOne = false;
  await store.removeAll('d');
  expect(await store.list('d')).toEqual([]);
});

test('createIfAbsent: a 409 (a conditional write of the key still in progress) is asked again, not taken as "someone else has it"', async () => {
  const store = (send409: boolean) =>
    new S3Store(
      out,
      clientWith((command, send) => {
        if (!(command instanceof PutObjectCommand) || !command.input.IfNoneMatch || !send409)
          return undefined;
        send409 = false;
        // The owner's own earlier attempt (timed out on the client, still running on the server)
        // lands a moment later; meanwhile S3 answers the retry 409 ConditionalRequestConflict.
        setTimeout(() => void send(command).catch(() => undefined), 300);
        const conflict = Object.assign(new Error('A conflicting conditional operation is in progress'), {
          name: 'ConditionalRequestConflict',
          $metadata: { httpStatusCode: 409 },
        });
        return Promise.reject(conflict);
      }),
    );
  const out = location('conflict');
  // What a claim does: created by this call, or already there with this owner.
  const claim = async (s: S3Store, owner: string) =>
    (await s.createIfAbsent('claims/k.json', JSON.stringify({ owner }))) ||
    (await s.readJson<{ owner: string }>('claims/k.json'))?.owner === owner;
  expect(await claim(store(true), 'a')).toBe(true);
  // And the answer holds afterwards: the owner is a, another owner does not get it.
  await new Promise((r) => setTimeout(r, 400));
  expect(await claim(store(false), 'a')).toBe(true);
  expect(await claim(store(false), 'b')).toBe(false);
});

test('run --out s3:// with credentials that can list but not write is refused up front (exit 2), not minutes into the run', async () => {
  // Temporary credentials from MinIO's STS with a read-only session policy (a read-only IAM role).
  const sts = new STSClient({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: minio.env.AWS_ACCESS_KEY_ID!, secretAccessKey: minio.secret },
  });
  const readOnly = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['s3:ListBucket', 's3:GetObject'], Resource: ['arn:aws:s3:::*'] }],
  };
  const { Credentials: c } = await sts.send(
    new AssumeRoleCommand({
      RoleArn: 'arn:minio:iam:::role/read-only',
      RoleSessionName: 'read-only',
      Policy: JSON.stringify(readOnly),
      DurationSeconds: 900,
    }),
  );
  const restore = saveAwsEnv();
  Object.assign(process.env, minio.env, {
    // Another spelling of the endpoint: a process keeps one S3 client per endpoint and region (its
    // credentials resolved once), and the other tests of this file need MinIO's full credentials.
    AWS_ENDPOINT_URL_S3: minio.endpoint.replace('127.0.0.1', 'localhost'),
    AWS_ACCESS_KEY_ID: c!.AccessKeyId!,
    AWS_SECRET_ACCESS_KEY: c!.SecretAccessKey!,
    AWS_SESSION_TOKEN: c!.SessionToken!,
  });
  try {
    const out = location('read-only');
    const err = await prefetchRunInputs({ seeds: 'seeds.jsonl', out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(
      new RegExp(`^--out ${out}: cannot write to this bucket \\(Access Denied`),
    );
    expect((err as Error).message).not.toContain(c!.SecretAccessKey!);
  } finally {
    restore();
    delete process.env.AWS_SESSION_TOKEN;
  }
});

test('a batch.spool in a bucket that does not exist is refused up front (exit 2), naming the role; one not in use is not tried', async () => {
  const restore = saveAwsEnv();
  Object.assign(process.env, minio.env);
  try {
    const file = path.join(tmpDir('codeclm-spool-config-'), 'config.json');
    const role = (mode: string, spool: string) => ({
      model: 'm',
      baseURL: 'http://127.0.0.1:9/v1',
      mode,
      batch: { spool },
    });
    fs.writeFileSync(
      file,
      JSON.stringify({
        roles: {
          strong: role('batch', 's3://codeclm-no-such-bucket/spool'),
          judge: role('online', 's3://codeclm-other-missing-bucket/spool'),
        },
      }),
    );
    const err = await checkBatchSpools(loadConfig(file, {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(
      /^roles\.strong\.batch\.spool s3:\/\/codeclm-no-such-bucket\/spool: cannot use this bucket \(The specified bucket does not exist/,
    );
    // A usable spool passes (a role in batch mode for one stage counts).
    fs.writeFileSync(
      file,
      JSON.stringify({
        roles: { strong: { ...role('online', location('spool')), stageModes: { decode: 'batch' } } },
      }),
    );
    await expect(checkBatchSpools(loadConfig(file, {}))).resolves.toBeUndefined();
  } finally {
    restore();
  }
});

test.each(['local', 's3'])(
  '%s: an --out that holds another run is refused (exit 2); the same run attaches; a run from before the marker is known by its plan',
  async (kind) => {
    const restore = saveAwsEnv();
    Object.assign(process.env, minio.env);
    try {
      const out = kind === 's3' ? location('reuse') : tmpDir('codeclm-reuse-');
      // Marked, but never started (no seed snapshot: a failed check, no server): not held yet.
      await claimRunOut(out, 'run-never');
      await expect(claimRunOut(out, 'run-a')).resolves.toBeUndefined();
      // Run a started: its seed snapshot is there.
      await openStore(out).writeJson('.work/seeds.info.json', { count: 2 });
      await expect(claimRunOut(out, 'run-a')).resolves.toBeUndefined();
      const err = await claimRunOut(out, 'run-b').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toBe(
        `--out ${out} holds run run-a (its seed snapshot, records and dataset); a second run there would ` +
          'mix the two: use a new --out, or --run-id run-a to attach to that run',
      );
      // An out dir a run wrote before runs were marked: its plan.json names the run.
      const old = kind === 's3' ? location('old') : tmpDir('codeclm-old-');
      const store = openStore(old);
      await store.writeJson('.work/seeds.info.json', { count: 2 });
      await store.writeJson('plan.json', { version: 1, run_id: 'run-old' });
      await expect(claimRunOut(old, 'run-new')).rejects.toThrow(`--out ${old} holds run run-old`);
      await expect(claimRunOut(old, 'run-old')).resolves.toBeUndefined();
    } finally {
      restore();
    }
  },
);
