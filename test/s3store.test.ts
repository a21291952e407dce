import crypto from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createSinkActivities } from '../src/activities/sink';
import { createQualityActivities } from '../src/activities/quality';
import { readKept } from '../src/cli/control';
import { prefetchRunInputs } from '../src/cli/run';
import { methodSchema } from '../src/schemas/config';
import type { DatasetRecord } from '../src/schemas/records';
import { emptyCounters, type RunProgress } from '../src/schemas/run';
import { fetchedInput, holdRemoteInputs, loadSeeds, prefetchRemoteInputs } from '../src/seeds/load';
import { openStore } from '../src/store/open';
import { S3Store } from '../src/store/s3';
import { runKeys } from '../src/store/runDir';
import { startTestMinio, type TestMinio } from './helpers/s3minio';
import { startSimulator } from '../src/sim/server';
import { CacheStore } from '../src/cache/store';
import { openCache, resolveCacheSettings } from '../src/cache/settings';
import { withCache } from '../src/llm/cached';
import { createLlmClient } from '../src/llm/client';
import { answerStrongTask } from '../src/tasks/answer';
import { cacheSchema } from '../src/schemas/config';
import { simConfig } from './helpers/pipeline';
import { createScheduleActivities, publishedVersions } from '../src/schedule/activities';
import { saveAwsEnv, tmpDir } from './helpers/env';
import { storeContract } from './helpers/storeContract';
import { InputError } from '../src/util/errors';

/**
 * The S3 store against a real MinIO (no mock): the Store contract, record writes that stay one
 * object per record whatever is retried, dataset.jsonl assembled by a multipart upload, export and
 * the quality index from object storage, and seeds from an s3:// URL.
 */
let minio: TestMinio;
const restoreAwsEnv = saveAwsEnv();

beforeAll(async () => {
  minio = await startTestMinio();
  // The workers' way: the AWS SDK's own environment variables (the store builds its client from them).
  Object.assign(process.env, minio.env);
}, 60_000);

afterAll(async () => {
  restoreAwsEnv();
  await minio?.stop();
});

const location = (name: string) => `s3://${minio.bucket}/${name}-${crypto.randomBytes(3).toString('hex')}`;

/** A client of our own, to look at the bucket from outside the store. */
function rawClient(): S3Client {
  return new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.env.AWS_ACCESS_KEY_ID!, secretAccessKey: minio.secret },
  });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await rawClient().send(
    new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/` }),
  );
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
}

storeContract('S3 (MinIO)', () => openStore(location('contract')));

function record(i: number, runId: string): DatasetRecord {
  return {
    id: `r1-e${String(i % 7).padStart(5, '0')}-i${String(i).padStart(4, '0')}`,
    instruction: `Instruction number ${i}: explain something ${i}`,
    response: `Answer ${i}`,
    source: i % 3 ? 'strong' : 'target',
    metadata: { use_case: `use case ${i % 4}`, skills: [`skill ${i % 5}`] },
    iteration: 1 + (i % 3),
    scores: { strong: 8, target: 5, gap: 3 },
    run_id: runId,
    actions: [],
  };
}

function progressOf(outDir: string, runId: string, kept: number): RunProgress {
  return {
    runId,
    phase: 'finalize',
    state: 'running',
    outDir,
    size: kept,
    counters: { ...emptyCounters(), kept, instructions: kept },
    usage: {},
    failures: [],
    startedAt: Date.now(),
  };
}

test('the store is S3 for s3:// and the key layout under the prefix is the out dir layout', () => {
  const s = openStore(`s3://${minio.bucket}/a/b/`);
  expect(s).toBeInstanceOf(S3Store);
  expect(s.location).toBe(`s3://${minio.bucket}/a/b`);
  expect(s.where(runKeys.recordFile('r1-e00000-i0000'))).toMatch(
    new RegExp(`^s3://${minio.bucket}/a/b/\\.work/records/[0-9a-f]{2}/r1-e00000-i0000\\.json$`),
  );
});

test('retried and concurrent record writes leave one object per record; finalize assembles the dataset; export reads it', async () => {
  const out = location('run');
  const prefix = out.slice(`s3://${minio.bucket}/`.length);
  const sink = createSinkActivities();
  const records = Array.from({ length: 40 }, (_, i) => record(i, 'run-s3'));
  // Every record written three times, all at once, as retried and replayed activities would.
  await Promise.all(records.flatMap((r) => [0, 1, 2].map(() => sink.saveRecord({ outDir: out, record: r }))));
  const objects = (await keysUnder(prefix)).filter((k) => k.startsWith('.work/records/'));
  expect(objects).toHaveLength(40);

  // Before finalize, export reads the record objects.
  const sorted = [...records].sort((a, b) => (a.id < b.id ? -1 : 1));
  expect(await readKept(out)).toEqual(sorted);

  const result = await sink.finalizeRun({ progress: progressOf(out, 'run-s3', 40) });
  expect(result).toEqual({ dataset: `${out}/dataset.jsonl`, kept: 40 });
  const body = await rawClient().send(
    new GetObjectCommand({ Bucket: minio.bucket, Key: `${prefix}/dataset.jsonl` }),
  );
  const lines = (await body.Body!.transformToString()).trim().split('\n');
  expect(lines.map((l) => (JSON.parse(l) as DatasetRecord).id)).toEqual(sorted.map((r) => r.id));
  // The human outputs sit beside it, as in a local out dir.
  const top = await keysUnder(prefix);
  for (const f of ['report.json', 'report.md', 'report.html', 'README.md', 'viewer.html'])
    expect(top).toContain(f);
  // Finalize again (a retried activity): the same dataset, still one line per record.
  await sink.finalizeRun({ progress: progressOf(out, 'run-s3', 40) });
  expect(await readKept(out)).toEqual(sorted);
});

test('a large dataset.jsonl goes up as a multipart upload, streamed from the records', async () => {
  const s = openStore(location('big'));
  const line = `${JSON.stringify({ text: 'y'.repeat(1000) })}\n`;
  const lines = 9 * 1024; // ~9 MiB: more than one 8 MiB part
  await s.writeStream(
    'dataset.jsonl',
    (async function* () {
      for (let i = 0; i < lines; i++) yield line;
    })(),
  );
  const key = `${(s as S3Store).prefix}/dataset.jsonl`;
  const head = await rawClient().send(new HeadObjectCommand({ Bucket: minio.bucket, Key: key }));
  // A multipart object's ETag ends in -<parts>.
  expect(head.ETag).toMatch(/-2"?$/);
  expect(head.ContentLength).toBe(line.length * lines);
});

test('claims across workers: the first owner wins, the same owner retrying still holds it', async () => {
  const out = location('claims');
  const sink = createSinkActivities();
  const got = await Promise.all(
    ['a', 'b', 'c', 'd'].map((owner) => sink.claim({ outDir: out, key: 'exact-abc', owner })),
  );
  expect(got.filter(Boolean)).toHaveLength(1);
  const winner = ['a', 'b', 'c', 'd'][got.indexOf(true)]!;
  expect(await sink.claim({ outDir: out, key: 'exact-abc', owner: winner })).toBe(true);
});

test('the quality index in object storage: concurrent batches never both keep a text, a retry decides the same', async () => {
  const out = location('quality');
  const acts = createQualityActivities();
  const method = methodSchema.parse({ dedupe: { mode: 'near', threshold: 0.8 } });
  const text = 'Write a short story about a lighthouse keeper who finds a message in a bottle.';
  const results = await Promise.all(
    [1, 2, 3, 4].map((e) =>
      acts.screenInstructions({
        outDir: out,
        batch: `r1-e0000${e}-b0000`,
        items: [
          { id: `r1-e0000${e}-i0000`, text: e % 2 ? text : `${text.toUpperCase()}!` },
          { id: `r1-e0000${e}-i0001`, text: `A unique instruction ${e} about ${'abcd'[e - 1]} things` },
        ],
        method,
        decontaminate: false,
      }),
    ),
  );
  const keptCopies = results.flatMap((r) => r.keep).filter((id) => id.endsWith('i0000'));
  expect(keptCopies).toHaveLength(1);
  expect(results.flatMap((r) => r.keep).filter((id) => id.endsWith('i0001'))).toHaveLength(4);
  const retry = await acts.screenInstructions({
    outDir: out,
    batch: 'r1-e00002-b0000',
    items: [],
    method,
    decontaminate: false,
  });
  expect(retry).toEqual(results[1]);
});

test('seeds from an s3:// URL load like a file; a bad line is named by the URL and line', async () => {
  const dir = location('seeds');
  const s = openStore(dir);
  await s.write(
    'seeds.jsonl',
    '{"instruction":"Explain recursion."}\n{"instruction":"Sort a list in Python."}\n',
  );
  await s.write('bad.jsonl', '{"instruction":"fine"}\n{"instruction":\n');
  await prefetchRemoteInputs([`${dir}/seeds.jsonl`, `${dir}/bad.jsonl`]);
  expect(loadSeeds(`${dir}/seeds.jsonl`).seeds.map((x) => x.instruction)).toEqual([
    'Explain recursion.',
    'Sort a list in Python.',
  ]);
  expect(() => loadSeeds(`${dir}/bad.jsonl`)).toThrow(`${dir}/bad.jsonl:2`);
  await expect(prefetchRemoteInputs([`${dir}/missing.jsonl`])).rejects.toThrow(
    `cannot read ${dir}/missing.jsonl: ${dir}/missing.jsonl: no such object`,
  );
});

test('an s3:// input in a bucket that does not exist is named as such, not as a missing object', async () => {
  const err = await prefetchRemoteInputs(['s3://codeclm-no-such-bucket/seeds.jsonl']).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toBe(
    'cannot read s3://codeclm-no-such-bucket/seeds.jsonl: The specified bucket does not exist',
  );
  // Writes say the same; a key that is missing in a bucket that exists still reads as absent.
  await expect(openStore('s3://codeclm-no-such-bucket/x').read('a.json')).rejects.toThrow(
    'The specified bucket does not exist',
  );
  expect(await openStore(location('absent')).read('a.json')).toBeUndefined();
});

test('an s3:// input two activities of one worker fetched stays until the last lets go of it', async () => {
  const url = location('shared-seeds.jsonl');
  await openStore(url.slice(0, url.lastIndexOf('/'))).write(
    url.slice(url.lastIndexOf('/') + 1),
    '{"text":"x"}\n',
  );
  // Two runs (or evals) of the same seed file snapshot it at once in one worker process.
  const [first, second] = await Promise.all([holdRemoteInputs([url]), holdRemoteInputs([url])]);
  first(); // the first one is done
  expect(fetchedInput(url)).toBe('{"text":"x"}\n'); // the second still reads it
  second();
  expect(fetchedInput(url)).toBeUndefined(); // nothing kept once both are done
});

test('the LLM cache in object storage: a result paid for on one machine is a hit on another', async () => {
  const sim = await startSimulator({ port: 0, seed: 5 });
  const shared = location('llm-cache');
  try {
    const cfg = { ...simConfig(sim.url).roles.strong, baseURL: sim.url };
    // Two worker machines: each its own local cache directory, both the same cache.store.
    const machine = () => {
      const settings = resolveCacheSettings({
        CODECLM_CACHE: tmpDir('codeclm-cache-'),
        CODECLM_CACHE_STORE: shared,
      });
      expect(settings.store).toBe(shared);
      const cache = openCache(settings)!;
      return { cache, client: withCache(createLlmClient('strong', cfg, {}), 'strong', cfg, cache) };
    };
    const a = machine();
    const b = machine();
    const first = await a.client.text(answerStrongTask, { instruction: 'Say hello' }, { temperature: 0.7 });
    expect(sim.requests()).toHaveLength(1);
    const onB = await b.client.text(answerStrongTask, { instruction: 'Say hello' }, { temperature: 0.7 });
    expect(onB.value).toBe(first.value);
    expect(onB.usage.cacheHits).toBe(1);
    expect(sim.requests()).toHaveLength(1);
    // B keeps a local copy: the next hit costs no request to the bucket either.
    expect(b.cache.stats().entries).toBe(1);
    // What changed is paid for once, wherever it is asked first.
    await b.client.text(answerStrongTask, { instruction: 'Say goodbye' }, { temperature: 0.7 });
    await a.client.text(answerStrongTask, { instruction: 'Say goodbye' }, { temperature: 0.7 });
    expect(sim.requests()).toHaveLength(2);
    const objects = await openStore(shared).list('');
    expect(objects).toHaveLength(2);
    for (const k of objects) expect(k).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}\.json$/);
  } finally {
    await sim.close();
  }
});

test('a shared cache tier that cannot be used (no such bucket) is a miss, never a failed call', async () => {
  const sim = await startSimulator({ port: 0, seed: 5 });
  try {
    const cfg = { ...simConfig(sim.url).roles.strong, baseURL: sim.url };
    const dead = openStore('s3://codeclm-no-such-bucket/llm-cache');
    const cache = new CacheStore(tmpDir('codeclm-cache-'), { shared: dead });
    const client = withCache(createLlmClient('strong', cfg, {}), 'strong', cfg, cache);
    const r = await client.text(answerStrongTask, { instruction: 'Say hello' }, { temperature: 0.7 });
    expect(r.value).toBeTruthy();
    expect(sim.requests()).toHaveLength(1);
    // Kept locally all the same.
    expect(cache.stats().entries).toBe(1);
  } finally {
    await sim.close();
  }
});

test('cache.store in a config: an s3:// location is checked up front', () => {
  expect(cacheSchema.parse({ store: 's3://team-cache/llm' }).store).toBe('s3://team-cache/llm');
  expect(() => cacheSchema.parse({ store: 's3://Bad_Bucket' })).toThrow('expected s3://bucket/prefix');
});

test("a schedule's versions in object storage: version prefixes, changes against the previous one, LATEST", async () => {
  const out = location('schedule');
  const acts = createScheduleActivities();
  const v1 = '20260101T030000Z-aaa';
  const v2 = '20260102T030000Z-bbb';
  const fill = async (versionDir: string, seeds: string[], pairs: string[]) => {
    const s = openStore(versionDir);
    await s.write(
      runKeys.seeds,
      seeds.map((t, i) => `${JSON.stringify({ id: String(i), instruction: t })}\n`).join(''),
    );
    await s.write(
      runKeys.dataset,
      pairs.map((t) => `${JSON.stringify({ id: t, instruction: t })}\n`).join(''),
    );
    await s.writeJson('report.json', { run: 'x' });
  };
  const first = await acts.prepareVersion({ outDir: out, version: v1, workflowId: 'wf-1' });
  expect(first.versionDir).toBe(`${out}/versions/${v1}`);
  await fill(first.versionDir, ['seed a', 'seed b'], ['pair a']);
  const p1 = await acts.publishVersion({ outDir: out, version: v1, workflowId: 'wf-1' });
  expect(p1.latest).toBe(true);
  expect(p1.changes.previous).toBeNull();

  const second = await acts.prepareVersion({ outDir: out, version: v2, workflowId: 'wf-2' });
  await fill(second.versionDir, ['seed a', 'seed b', 'seed c'], ['pair a', 'pair c']);
  const p2 = await acts.publishVersion({ outDir: out, version: v2, workflowId: 'wf-2' });
  expect(p2.changes.previous).toBe(v1);
  expect(p2.changes.seeds).toEqual(expect.objectContaining({ added: 1, removed: 0, unchanged: 2 }));
  expect(p2.changes.pairs).toEqual(expect.objectContaining({ added: 1, unchanged: 1 }));
  expect(await publishedVersions(out)).toEqual([v1, v2]);
  expect((await openStore(out).read('LATEST'))?.trim()).toBe(v2);
  expect(await openStore(second.versionDir).readJson('report.json')).toEqual(
    expect.objectContaining({ changes: expect.objectContaining({ previous: v1 }) }),
  );
  // A version prefix belongs to its workflow: another one is refused.
  await expect(acts.prepareVersion({ outDir: out, version: v1, workflowId: 'wf-other' })).rejects.toThrow(
    'belongs to wf-1',
  );
});

test('versions publishing at the same moment leave LATEST on the newest', async () => {
  const out = location('schedule-race');
  const acts = createScheduleActivities();
  const versions = Array.from(
    { length: 12 },
    (_, i) => `202601${String(i + 1).padStart(2, '0')}T030000Z-v${i}`,
  );
  for (const [i, version] of versions.entries()) {
    const { versionDir } = await acts.prepareVersion({ outDir: out, version, workflowId: `wf-${i}` });
    const s = openStore(versionDir);
    await s.write(runKeys.seeds, `${JSON.stringify({ id: '0', instruction: `seed ${i}` })}\n`);
    await s.write(runKeys.dataset, `${JSON.stringify({ id: `p${i}`, instruction: `pair ${i}` })}\n`);
  }
  // All at once, as refreshes with --overlap allow_all can: each reads LATEST before the others write.
  const results = await Promise.all(
    versions.map((version, i) => acts.publishVersion({ outDir: out, version, workflowId: `wf-${i}` })),
  );
  expect((await openStore(out).read('LATEST'))?.trim()).toBe(versions.at(-1));
  expect(results.at(-1)!.latest).toBe(true);
});

test('run checks --out s3:// up front: a bucket it cannot use is a clear input error, naming the settings', async () => {
  await expect(prefetchRunInputs({ seeds: 'seeds.jsonl', out: location('fine') })).resolves.toBeUndefined();
  const bad = prefetchRunInputs({ seeds: 'seeds.jsonl', out: 's3://codeclm-no-such-bucket/run' });
  await expect(bad).rejects.toThrow('--out s3://codeclm-no-such-bucket/run: cannot use this bucket');
  await expect(bad).rejects.toThrow('AWS_ENDPOINT_URL_S3');
  await expect(bad).rejects.toMatchObject({ name: 'InputError' });
});
