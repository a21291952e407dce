import fs from 'node:fs';
import path from 'node:path';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { createWorker } from '../src/worker';
import { startSimulator, type SimRequestLog } from '../src/sim/server';
import { CacheStore, cacheKey, canonicalJson } from '../src/cache/store';
import { resolveCacheSettings } from '../src/cache/settings';
import { withCache, llmCacheKey } from '../src/llm/cached';
import { createLlmClient } from '../src/llm/client';
import { encodeTask } from '../src/tasks/encode';
import { answerStrongTask } from '../src/tasks/answer';
import type { LlmClient } from '../src/llm/types';
import { addUsage, usageTotals, type Usage } from '../src/schemas/records';
import { codeclmScheduledRun, type ScheduledRunResult } from '../src/workflows/scheduled';
import type { Report } from '../src/report/build';
import type { VersionChanges } from '../src/schedule/changes';
import { simConfig } from './helpers/pipeline';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';
import { expectReplays } from './helpers/replay';
import { makeSeeds, writeSeeds } from './helpers/seeds';

/**
 * The LLM result cache: the store (sharded files, atomic writes, LRU eviction, clear), the client
 * decorator (what is in the key, what is never stored), and the refresh that pays only for new seeds.
 */

describe('cache store', () => {
  test('sharded files, atomic put/get, canonical keys', () => {
    const dir = tmpDir('codeclm-cache-');
    const store = new CacheStore(dir);
    const key = cacheKey({ b: 1, a: [1, { d: 2, c: 3 }] });
    expect(key).toBe(cacheKey({ a: [1, { c: 3, d: 2 }], b: 1 }));
    expect(canonicalJson({ b: 1, a: undefined, c: 'x' })).toBe('{"b":1,"c":"x"}');
    expect(store.get(key)).toBeUndefined();
    store.put(key, { hello: 'world' }, { role: 'strong' });
    const file = path.join(dir, key.slice(0, 2), key.slice(2, 4), `${key}.json`);
    expect(fs.existsSync(file)).toBe(true);
    expect(store.get<{ hello: string }>(key)?.value).toEqual({ hello: 'world' });
    // No temp files left behind; a damaged entry is a miss.
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    fs.writeFileSync(file, '{not json');
    expect(store.get(key)).toBeUndefined();
    expect(store.stats().entries).toBe(1);
    expect(store.clear().removed).toBe(1);
    expect(store.stats().entries).toBe(0);
  });

  test('over maxMegabytes the least recently used entries are evicted', () => {
    const dir = tmpDir('codeclm-cache-evict-');
    const store = new CacheStore(dir, { maxMegabytes: 0.05 }); // ~52 KB
    const blob = 'x'.repeat(10_000);
    const keys = Array.from({ length: 10 }, (_, i) => cacheKey({ i }));
    keys.forEach((k, i) => {
      store.put(k, blob, {});
      const t = new Date(Date.now() - (100 - i) * 1000); // older first
      fs.utimesSync(store.fileOf(k), t, t);
    });
    // Use key 0 (the oldest) again: a hit refreshes its mtime, so it survives eviction.
    expect(store.get(keys[0]!)).toBeDefined();
    const { removed } = store.evict();
    expect(removed).toBeGreaterThan(0);
    expect(store.stats().bytes).toBeLessThanOrEqual(store.maxBytes!);
    expect(store.get(keys[0]!)).toBeDefined();
    expect(store.get(keys[1]!)).toBeUndefined();
    expect(store.get(keys[9]!)).toBeDefined();
  });

  test('settings: on by default, off by env or config, directory from CODECLM_CACHE', () => {
    const base = { CODECLM_HOME: '/tmp/h' } as NodeJS.ProcessEnv;
    expect(resolveCacheSettings(base)).toEqual({
      enabled: true,
      dir: path.resolve('/tmp/h/cache'),
      maxMegabytes: undefined,
    });
    expect(resolveCacheSettings({ ...base, CODECLM_CACHE: 'off' }).enabled).toBe(false);
    expect(resolveCacheSettings({ ...base, CODECLM_CACHE: '/tmp/c', CODECLM_CACHE_MAX_MB: '5' })).toEqual({
      enabled: true,
      dir: '/tmp/c',
      maxMegabytes: 5,
    });
    expect(resolveCacheSettings(base, { enabled: false }).enabled).toBe(false);
    expect(
      resolveCacheSettings({ ...base, CODECLM_CACHE: 'off' }, { enabled: true, dir: '/tmp/d' }).enabled,
    ).toBe(false);
    // Under jest, only an explicit directory turns it on (tests never share a default directory).
    expect(resolveCacheSettings({ ...base, JEST_WORKER_ID: '1' }).enabled).toBe(false);
    expect(resolveCacheSettings({ ...base, JEST_WORKER_ID: '1' }, { dir: '/tmp/e' }).enabled).toBe(true);
  });
});

describe('cached LLM client', () => {
  const cfg = { ...simConfig('http://127.0.0.1:9/v1').roles.strong, apiKeyEnv: 'MY_SECRET_KEY' };

  function fake(answer: () => unknown): LlmClient & { calls: number } {
    const f = {
      role: 'strong',
      model: cfg.model,
      calls: 0,
      async structured() {
        f.calls++;
        return { value: answer(), usage: { calls: 1, promptTokens: 10, completionTokens: 5 } };
      },
      async text() {
        f.calls++;
        return { value: String(answer()), usage: { calls: 1, promptTokens: 10, completionTokens: 5 } };
      },
    };
    return f as unknown as LlmClient & { calls: number };
  }

  test('a repeated request is a hit: no call, no tokens, cacheHits 1', async () => {
    const store = new CacheStore(tmpDir('codeclm-cache-client-'));
    const inner = fake(() => ({ use_case: 'coding', skills: ['python'] }));
    const client = withCache(inner, 'strong', cfg, store);
    const slots = { instruction: 'Write a function', max_skills: '3' };
    const first = await client.structured(encodeTask, slots, { temperature: 0 });
    const second = await client.structured(encodeTask, slots, { temperature: 0 });
    expect(inner.calls).toBe(1);
    expect(second.value).toEqual(first.value);
    expect(second.usage).toEqual({ calls: 0, promptTokens: 0, completionTokens: 0, cacheHits: 1 });
    // Anything that changes the answer changes the key: temperature, messages, model, role.
    await client.structured(encodeTask, slots, { temperature: 0.7 });
    await client.structured(
      encodeTask,
      { ...slots, instruction: 'Write another function' },
      { temperature: 0 },
    );
    await withCache(inner, 'strong', { ...cfg, model: 'other' }, store).structured(encodeTask, slots, {
      temperature: 0,
    });
    await withCache(inner, 'judge', cfg, store).structured(encodeTask, slots, { temperature: 0 });
    await withCache(inner, 'strong', { ...cfg, maxTokens: 99 }, store).structured(encodeTask, slots, {
      temperature: 0,
    });
    expect(inner.calls).toBe(6);
    // The key does not depend on which key env var a role reads, nor on its value.
    expect(llmCacheKey('strong', cfg, 'structured', encodeTask, slots, {})).toBe(
      llmCacheKey('strong', { ...cfg, apiKeyEnv: 'OTHER' }, 'structured', encodeTask, slots, {}),
    );
    // Usage with hits adds up (hits are not calls).
    const usage: Usage = {};
    addUsage(usage, { 'encode/strong': first.usage });
    addUsage(usage, { 'encode/strong': second.usage });
    expect(usage['encode/strong']).toEqual({ calls: 1, promptTokens: 10, completionTokens: 5, cacheHits: 1 });
    expect(usageTotals(usage).cacheHits).toBe(1);
  });

  test('errors and invalid output are never cached; a cached value failing the schema is a miss', async () => {
    const store = new CacheStore(tmpDir('codeclm-cache-err-'));
    let fail = true;
    const inner = fake(() => {
      if (fail) throw new Error('boom');
      return { use_case: 'coding', skills: ['python'] };
    });
    const client = withCache(inner, 'strong', cfg, store);
    const slots = { instruction: 'x', max_skills: '3' };
    await expect(client.structured(encodeTask, slots)).rejects.toThrow('boom');
    expect(store.stats().entries).toBe(0);
    fail = false;
    await client.structured(encodeTask, slots);
    expect(store.stats().entries).toBe(1);
    // Tamper with the entry: it no longer validates, so the client asks again.
    const key = llmCacheKey('strong', cfg, 'structured', encodeTask, slots, {});
    store.put(key, { use_case: '', skills: [] });
    await client.structured(encodeTask, slots);
    expect(inner.calls).toBe(3);
  });

  test('nothing secret reaches the cache directory (real client against the simulator)', async () => {
    const sim = await startSimulator({ port: 0, seed: 3 });
    const dir = tmpDir('codeclm-cache-secret-');
    const secret = 'sk-test-SECRET-0123456789abcdef';
    try {
      const real = { ...cfg, baseURL: sim.url, apiKeyEnv: 'MY_SECRET_KEY' };
      const client = withCache(
        createLlmClient('strong', real, { MY_SECRET_KEY: secret }),
        'strong',
        real,
        new CacheStore(dir),
      );
      await client.text(answerStrongTask, { instruction: 'Say hello' }, { temperature: 0.7 });
      const again = await client.text(answerStrongTask, { instruction: 'Say hello' }, { temperature: 0.7 });
      expect(again.usage.cacheHits).toBe(1);
      expect(sim.requests()).toHaveLength(1);
      const all = fs
        .readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.json'));
      expect(all).toHaveLength(1);
      for (const f of all) expect(fs.readFileSync(path.join(dir, f), 'utf8')).not.toContain(secret);
    } finally {
      await sim.close();
    }
  });
});

describe('refresh with the cache on a real worker', () => {
  let sim: Awaited<ReturnType<typeof startSimulator>>;
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;
  let client: Client;
  const taskQueue = uniqueQueue('cache');
  const cacheDir = tmpDir('codeclm-cache-e2e-');

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 11 });
    connection = await NativeConnection.connect({ address: testAddress() });
    worker = await createWorker({ connection, taskQueue, cache: { dir: cacheDir } });
    running = worker.run();
    client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    await sim?.close();
  });

  async function simLog(): Promise<SimRequestLog[]> {
    const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/requests`);
    return (await res.json()) as SimRequestLog[];
  }

  test('the second refresh sees 40 old + 10 new seeds and makes exactly 10 encode calls', async () => {
    const dir = tmpDir('codeclm-refresh-');
    const seedsFile = path.join(dir, 'seeds.jsonl');
    const out = path.join(dir, 'out');
    const config = simConfig(sim.url, {
      limits: { size: 3, concurrency: 8, topUpRounds: 0 },
      method: { poolSize: 4, maxIterations: 2 },
    });
    const refresh = (n: number, tuning?: { maxHistoryEvents: number }) =>
      client.workflow.start(codeclmScheduledRun, {
        workflowId: `cache-refresh-${n}-${Date.now()}`,
        taskQueue,
        args: [
          { scheduleId: 'cache-test', outDir: out, seedsFile, skipInvalid: false, config, taskQueue, tuning },
        ],
      });
    const encodeRequests = (log: SimRequestLog[]) =>
      log.filter((r) => r.task === 'codeclm_encode' && r.status === 200).length;

    writeSeeds(seedsFile, makeSeeds(40));
    const first: ScheduledRunResult = await (await refresh(1)).result();
    expect(first.counters.seeds).toBe(40);
    expect(first.usage['encode/strong']?.calls).toBe(40);
    expect(first.usage['encode/strong']?.cacheHits ?? 0).toBe(0);
    const logAfterFirst = await simLog();
    expect(encodeRequests(logAfterFirst)).toBe(40);

    // The seed file changes between refreshes: the same 40 plus 10 new ones.
    writeSeeds(seedsFile, [...makeSeeds(40), ...makeSeeds(10, 40)]);
    const second: ScheduledRunResult = await (await refresh(2)).result();
    expect(second.counters.seeds).toBe(50);
    expect(second.counters.encoded).toBe(50);

    // By the report's counters ...
    const report = JSON.parse(
      fs.readFileSync(path.join(out, 'versions', second.version, 'report.json'), 'utf8'),
    ) as Report & { changes: VersionChanges };
    expect(report.usage.per_stage_role['encode/strong']).toMatchObject({ calls: 10, cacheHits: 40 });
    expect(report.usage.total.cache_hits).toBeGreaterThanOrEqual(40);
    expect(fs.readFileSync(path.join(out, 'versions', second.version, 'report.md'), 'utf8')).toMatch(
      /cache hits/,
    );
    // ... and by the simulator's own request log.
    const logAfterSecond = await simLog();
    expect(encodeRequests(logAfterSecond.slice(logAfterFirst.length))).toBe(10);

    // The change report of the second version.
    expect(report.changes.previous).toBe(first.version);
    expect(report.changes.seeds).toMatchObject({
      current: 50,
      previous: 40,
      added: 10,
      removed: 0,
      unchanged: 40,
    });
    expect(report.changes.metadata.use_cases_jsd).not.toBeNull();
    expect(second.changes.seeds.added).toBe(10);
    // The first version is intact, and latest points at the second.
    expect(fs.existsSync(path.join(out, 'versions', first.version, 'dataset.jsonl'))).toBe(true);
    expect(fs.readlinkSync(path.join(out, 'latest'))).toBe(path.join('versions', second.version));
    expect(fs.readFileSync(path.join(out, 'LATEST'), 'utf8').trim()).toBe(second.version);

    // Run the same refresh again (as after a crash, or a refresh with nothing new), with a tiny
    // history bound so the run continues-as-new along the way: every LLM call of it had already
    // succeeded once, so none is repeated, and the version is still published.
    const handle = await refresh(3, { maxHistoryEvents: 5 });
    const third: ScheduledRunResult = await handle.result();
    const desc = await handle.describe();
    expect(desc.runId).not.toBe(handle.firstExecutionRunId); // it did continue as new
    expect(third.counters.seeds).toBe(50);
    expect(third.usage['encode/strong']).toMatchObject({ calls: 0, cacheHits: 50 });
    expect(usageTotals(third.usage).calls).toBe(0);
    expect((await simLog()).length).toBe(logAfterSecond.length);
    expect(third.changes).toMatchObject({
      previous: second.version,
      seeds: { added: 0, removed: 0, unchanged: 50 },
    });
    expect(fs.readFileSync(path.join(out, 'LATEST'), 'utf8').trim()).toBe(third.version);
    // The refresh histories (first execution and the continued one) replay without nondeterminism.
    await expectReplays(
      client,
      [first.runId, { workflowId: handle.workflowId, runId: handle.firstExecutionRunId }, handle.workflowId],
      'scheduled',
    );
    expect(fs.readdirSync(path.join(out, 'versions')).sort()).toEqual(
      [first.version, second.version, third.version].sort(),
    );
  });
});
