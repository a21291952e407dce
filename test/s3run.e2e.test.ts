import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { openStore } from '../src/store/open';
import type { DatasetRecord } from '../src/schemas/records';
import { embeddedEnv, runCli, type CliResult } from './helpers/cli';
import { tmpDir } from './helpers/env';
import { startTestMinio, type TestMinio } from './helpers/s3minio';

/**
 * `codeclm run --out s3://...` and `codeclm eval --out s3://...` with the embedded defaults (own dev
 * server, in-process worker, the offline simulator) against a real MinIO, configured only through
 * the AWS SDK's environment variables: they complete, `export` reads the pairs from the bucket (and
 * writes them to it), the outputs are those of the same command on a local directory, the
 * credentials appear in no workflow history, log or object, and the SDK's Node-version warning block
 * stays out of the terminal.
 */
const seedsFile = path.join(__dirname, '..', 'examples', 'formats', 'vicuna.jsonl');
const instructionsFile = path.join(__dirname, '..', 'examples', 'eval', 'instructions.jsonl');
/** The AWS SDK's NodeVersionSupportWarning (a nine-line block on stderr, on Node below 22). */
const SDK_NODE_WARNING = 'NodeVersionSupportWarning';
const sdkWarnsOnThisNode = Number(process.versions.node.split('.')[0]) < 22;
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
  // An instruction set of two categories, in the bucket and on disk.
  const set = fs.readFileSync(instructionsFile, 'utf8').split('\n').filter(Boolean);
  const instructions = [...set.slice(0, 3), ...set.slice(-3)].join('\n') + '\n';
  await withAwsEnv(() => openStore(`s3://${minio.bucket}/inputs`).write('instructions.jsonl', instructions));
  fs.writeFileSync(path.join(cwd, 'instructions.jsonl'), instructions);
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
  // `export --out s3://bucket/key` writes the same file as an object.
  const exported = `s3://${minio.bucket}/exports/s3run.jsonl`;
  const toS3 = await cli(['export', 's3run-1', '--format', 'jsonl', '--out', exported]);
  expect(toS3.code).toBe(0);
  expect(toS3.stdout).toContain(exported);
  expect(await withAwsEnv(() => openStore(`s3://${minio.bucket}/exports`).read('s3run.jsonl'))).toBe(
    fs.readFileSync(path.join(cwd, 's3.jsonl'), 'utf8'),
  );

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

/** Every file under a local directory and its text, keyed as store keys (`/`-separated). */
async function localFiles(dir: string): Promise<Map<string, string>> {
  const store = openStore(dir);
  const keys = await store.list('');
  return new Map(await Promise.all(keys.map(async (k) => [k, (await store.read(k))!] as const)));
}

async function bucketFiles(location: string): Promise<Map<string, string>> {
  const store = openStore(location);
  const keys = await withAwsEnv(() => store.list(''));
  return new Map(
    await withAwsEnv(() => Promise.all(keys.map(async (k) => [k, (await store.read(k))!] as const))),
  );
}

test('eval --instructions s3:// --out s3:// writes what a local eval writes; no credentials; no SDK warning block', async () => {
  const out = `s3://${minio.bucket}/evals/s3eval`;
  const s3Instructions = `s3://${minio.bucket}/inputs/instructions.jsonl`;
  // Ids of the same length: the markdown tables are padded to their widest cell.
  const [s3Id, localId] = ['eval-s3-0001', 'eval-fs-0001'];
  const remote = await cli([
    'eval',
    '--instructions',
    s3Instructions,
    '--out',
    out,
    '--eval-id',
    s3Id,
    '--json',
  ]);
  expect(remote.stderr).not.toContain(SDK_NODE_WARNING);
  expect(remote.code).toBe(0);
  const remoteResult = JSON.parse(remote.stdout);
  expect(remoteResult.files.evalJsonl).toBe(`${out}/eval.jsonl`);
  expect(remoteResult.crr.overall.total).toBe(6);

  const localOut = path.join(cwd, 'local-eval');
  const localFile = path.join(cwd, 'instructions.jsonl');
  const local = await cli([
    'eval',
    '--instructions',
    'instructions.jsonl',
    '--out',
    'local-eval',
    '--eval-id',
    localId,
    '--json',
  ]);
  expect(local.code).toBe(0);
  expect(JSON.parse(local.stdout).crr).toEqual(remoteResult.crr);

  // The same objects as the local files, key for key, and the same contents once the eval id, the
  // instruction file's location and the wall time are set aside.
  const normalise = (text: string) =>
    text
      .split(s3Id)
      .join('<id>')
      .split(localId)
      .join('<id>')
      .split(s3Instructions)
      .join('<file>')
      .split(localFile)
      .join('<file>')
      .replace(/"wall_seconds": [\d.]+/, '"wall_seconds": 0')
      .replace(/; [\d.]+ s; state/, '; 0 s; state');
  const inBucket = await bucketFiles(out);
  const onDisk = await localFiles(localOut);
  expect([...inBucket.keys()].sort()).toEqual([...onDisk.keys()].sort());
  for (const f of [
    'eval.jsonl',
    'eval-report.json',
    'eval-report.md',
    'eval-crr.svg',
    '.eval/instructions.jsonl',
  ])
    expect(inBucket.has(f)).toBe(true);
  expect(inBucket.get('eval.jsonl')!.trim().split('\n')).toHaveLength(6);
  for (const [key, text] of onDisk)
    expect([key, normalise(inBucket.get(key)!)]).toEqual([key, normalise(text)]);

  // Another instruction set into the same prefix: refused (exit 2), its results never mixed in.
  fs.writeFileSync(path.join(cwd, 'other.jsonl'), '{"instruction": "Name three primary colours."}\n');
  const mixed = await cli(['eval', '--instructions', 'other.jsonl', '--out', out]);
  expect(mixed.code).toBe(2);
  expect(mixed.stderr).toContain(`--out ${out} already holds an evaluation of a different instruction file`);

  // A missing s3:// instruction file: exit 2 naming it, before anything starts.
  const missing = `s3://${minio.bucket}/inputs/missing.jsonl`;
  const absent = await cli(['eval', '--instructions', missing, '--out', `${out}-2`]);
  expect(absent.code).toBe(2);
  expect(absent.stderr).toContain(missing);

  // No credential in any object, anything printed, or any log.
  const logDir = path.join(env.CODECLM_HOME!, 'logs');
  const logs = fs.readdirSync(logDir).map((f) => fs.readFileSync(path.join(logDir, f), 'utf8'));
  for (const text of [...inBucket.values(), ...said, ...logs]) {
    expect(text).not.toContain(minio.secret);
    expect(text).not.toContain(minio.env.AWS_ACCESS_KEY_ID!);
  }

  // The SDK's Node-version notice: never a block on stderr (of any command of this file), one line
  // in the worker log instead; a user who sets the SDK's own variable gets the SDK's behaviour back.
  for (const text of said) expect(text).not.toContain(SDK_NODE_WARNING);
  if (sdkWarnsOnThisNode) {
    expect(logs.join('\n')).toMatch(/AWS SDK for JavaScript v3: .*require Node >= 22; this is Node v/);
    const optedIn = await runCli(['eval', '--instructions', missing, '--out', `${out}-2`], {
      env: { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' },
      cwd,
    });
    expect(optedIn.code).toBe(2);
    expect(optedIn.stderr).toContain(SDK_NODE_WARNING);
  }
}, 300_000);
