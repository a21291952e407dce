import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { openStore } from '../src/store/open';
import type { DatasetRecord } from '../src/schemas/records';
import { embeddedEnv, runCli, type CliResult } from './helpers/cli';
import { tmpDir } from './helpers/env';
import { startTestMinio, type TestMinio } from './helpers/s3minio';

/**
 * `codeclm run --out s3://...` with the embedded defaults (own dev server, in-process worker, the
 * offline simulator) against a real MinIO, configured only through the AWS SDK's environment
 * variables: it completes, `export` reads the pairs from the bucket, they are the pairs a local run
 * of the same seeds keeps, and the credentials appear in no workflow history, log or object.
 */
const seedsFile = path.join(__dirname, '..', 'examples', 'formats', 'vicuna.jsonl');
let minio: TestMinio;
let env: NodeJS.ProcessEnv;
let cwd: string;
const said: string[] = [];

beforeAll(async () => {
  minio = await startTestMinio();
  cwd = tmpDir('codeclm-s3run-');
  env = { ...minio.env, ...(await embeddedEnv(cwd, 60)) };
  // The seeds, as an object in the bucket: four of the Vicuna-format examples.
  const seeds = fs.readFileSync(seedsFile, 'utf8').split('\n').slice(0, 4).join('\n');
  await withAwsEnv(() => openStore(`s3://${minio.bucket}/inputs`).write('seeds.jsonl', `${seeds}\n`));
  fs.writeFileSync(path.join(cwd, 'seeds.jsonl'), `${seeds}\n`);
}, 60_000);

afterAll(async () => {
  await minio?.stop();
});

/** Runs `fn` with this test process's AWS environment pointing at the test MinIO. */
async function withAwsEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(minio.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, minio.env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** `codeclm ARGS` with everything it printed kept, to search for the credentials afterwards. */
async function cli(args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env, cwd });
  said.push(r.stdout, r.stderr);
  return r;
}

const readRecords = (file: string): DatasetRecord[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DatasetRecord);

/** Every payload of a history as text (payload data is bytes inside the history). */
function historyText(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) historyText(v, out);
  return out;
}

test('run --out s3:// completes with the embedded defaults; export matches a local run; no credentials anywhere', async () => {
  const out = `s3://${minio.bucket}/runs/s3run`;
  const started = await cli([
    'run',
    '--seeds',
    `s3://${minio.bucket}/inputs/seeds.jsonl`,
    '--out',
    out,
    '--size',
    '5',
    '--run-id',
    's3run-1',
    '--detach',
  ]);
  expect(started.code).toBe(0);
  const waited = await cli(['wait', 's3run-1']);
  expect(waited.code).toBe(0);
  const status = JSON.parse((await cli(['status', 's3run-1', '--json'])).stdout);
  expect(status.state).toBe('completed');
  expect(status.out_dir).toBe(out);
  expect((await cli(['export', 's3run-1', '--format', 'jsonl', '--out', 's3.jsonl'])).code).toBe(0);
  const fromS3 = readRecords(path.join(cwd, 's3.jsonl'));
  expect(fromS3.length).toBeGreaterThanOrEqual(5);

  // Every history of the run (the parent and its children) while the detached server lingers.
  const connection = await Connection.connect({ address: `127.0.0.1:${env.CODECLM_EMBEDDED_PORT}` });
  const texts: string[] = [];
  try {
    const client = new Client({ connection });
    for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH "s3run-1"` })) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      texts.push(...historyText(history));
    }
  } finally {
    await connection.close();
  }
  const histories = texts.join('\n');
  // The histories do carry the run's location (so the check below reads the payloads)...
  expect(histories).toContain(out);
  // ...and no credential: not the secret, not the access key id.
  expect(histories).not.toContain(minio.secret);
  expect(histories).not.toContain(minio.env.AWS_ACCESS_KEY_ID!);

  // The same seeds, a local out dir: the same pairs (the run id aside).
  const local = await cli([
    'run',
    '--seeds',
    'seeds.jsonl',
    '--out',
    'local-out',
    '--size',
    '5',
    '--run-id',
    'local-1',
  ]);
  expect(local.code).toBe(0);
  expect((await cli(['export', 'local-1', '--format', 'jsonl', '--out', 'local.jsonl'])).code).toBe(0);
  const strip = (rs: DatasetRecord[]) => rs.map(({ run_id: _runId, ...r }) => r);
  expect(strip(fromS3)).toEqual(strip(readRecords(path.join(cwd, 'local.jsonl'))));

  // What the bucket holds: the local out dir's layout, and no credential in any object.
  const store = openStore(out);
  const keys = await withAwsEnv(() => store.list(''));
  for (const f of [
    'dataset.jsonl',
    'report.json',
    'report.md',
    'viewer.html',
    'plan.json',
    '.work/seeds.jsonl',
  ])
    expect(keys).toContain(f);
  const bodies = await withAwsEnv(() => Promise.all(keys.map((k) => store.read(k))));
  for (const b of bodies) expect(b).not.toContain(minio.secret);
  // Nor in anything the commands printed, or the detached run's log.
  const logs = fs
    .readdirSync(path.join(env.CODECLM_HOME!, 'runs'))
    .map((f) => fs.readFileSync(path.join(env.CODECLM_HOME!, 'runs', f), 'utf8'));
  for (const text of [...said, ...logs]) {
    expect(text).not.toContain(minio.secret);
    expect(text).not.toContain(minio.env.AWS_ACCESS_KEY_ID!);
  }
}, 300_000);
