import fs from 'node:fs';
import { outcomesOf } from '../src/batch/provider';
import {
  assembleBatchFile,
  manifestGoneCodes,
  readManifestRows,
  readOutcome,
  settleRows,
  spoolKeys,
  writePart,
} from '../src/batch/spool';
import { openStore } from '../src/store/open';
import type { Store } from '../src/store/store';
import { tmpDir } from './helpers/env';
import { batcherWorkflowId, runWorkflowIdOf } from '../src/batch/protocol';
import { computeCost } from '../src/report/cost';
import { configSchema } from '../src/schemas/config';
import { entryWorkflowId, encodeWorkflowId } from '../src/workflows/ids';

/** The pure parts of batch mode: line outcomes, ids, prices and the config's bounds. */
test('each request of a finished batch gets one outcome: ok, resubmit or failed with the reason', () => {
  const lines = [
    { custom_id: 'a', response: { status_code: 200, body: {} } },
    { custom_id: 'b', response: { status_code: 500, body: { error: { message: 'boom' } } } },
    { custom_id: 'c', response: { status_code: 400, body: { error: { message: 'bad schema' } } } },
    { custom_id: 'd', response: null, error: { code: 'batch_expired', message: 'expired' } },
    { custom_id: 'e', response: null, error: { code: 'batch_cancelled', message: 'cancelled' } },
  ];
  const out = outcomesOf({ status: 'completed', errors: undefined }, ['a', 'b', 'c', 'd', 'e', 'f'], lines);
  expect(out.map((o) => [o.id, o.kind])).toEqual([
    ['a', 'ok'],
    ['b', 'retry'],
    ['c', 'failed'],
    ['d', 'retry'],
    ['e', 'failed'],
    ['f', 'retry'],
  ]);
  expect(out[1]).toMatchObject({ reason: 'HTTP 500: boom' });
  expect(out[2]).toMatchObject({ status: 400, reason: 'HTTP 400: bad schema' });
  expect((out[4] as { reason: string }).reason).toContain('cancelled at the provider');
  // A failed batch (validation) has no lines: every request goes into a new batch with its reason.
  const failed = outcomesOf(
    { status: 'failed', errors: { data: [{ code: 'invalid_json_line', message: 'line 3' }] } },
    ['x'],
    [],
  );
  expect(failed).toEqual([{ id: 'x', kind: 'retry', reason: 'invalid_json_line: line 3' }]);
});

test('every workflow of a run finds the run batcher, and its id is no longer than an entry id', () => {
  const run = 'my-run';
  for (const id of [
    run,
    encodeWorkflowId(run, 3),
    entryWorkflowId(run, 2, 17),
    `${entryWorkflowId(run, 1, 0)}/i0003`,
  ])
    expect(runWorkflowIdOf(id)).toBe(run);
  for (const role of ['strong', 'target', 'judge'] as const)
    expect(batcherWorkflowId(run, role).length).toBeLessThanOrEqual(entryWorkflowId(run, 1, 0).length);
});

test('batch tokens at the batch price (default half), and what it would have cost online', () => {
  const usage = {
    'answer/target': {
      calls: 4,
      promptTokens: 4_000_000,
      completionTokens: 1_000_000,
      batchCalls: 2,
      batchPromptTokens: 2_000_000,
      batchCompletionTokens: 500_000,
    },
  };
  const half = computeCost(usage, { target: { in: 1, out: 4 } })!;
  expect(half.online_usd).toBe(4); // 2 M in at $1 + 0.5 M out at $4
  expect(half.batch_usd).toBe(2);
  expect(half.total_usd).toBe(6);
  expect(half.all_online_usd).toBe(8);
  expect(half.per_stage_role_batch_usd['answer/target']).toBe(2);
  const set = computeCost(usage, { target: { in: 1, out: 4, batchIn: 0.1, batchOut: 0.1 } })!;
  expect(set.batch_usd).toBe(0.25);
});

test('config: mode, per-stage modes and batch limits are checked', () => {
  const ok = configSchema.parse({
    roles: {
      target: { mode: 'batch', batch: { maxWaitSeconds: 5 } },
      strong: { stageModes: { answer: 'batch' } },
    },
  });
  expect(ok.roles.target.mode).toBe('batch');
  expect(ok.roles.target.batch!.maxRequests).toBe(10_000);
  expect(ok.roles.target.batch!.maxBytes).toBe(100_000_000);
  expect(configSchema.safeParse({ roles: { target: { mode: 'offline' } } }).success).toBe(false);
  expect(configSchema.safeParse({ roles: { strong: { stageModes: { answers: 'batch' } } } }).success).toBe(
    false,
  );
  expect(configSchema.safeParse({ roles: { target: { batch: { maxRequests: 50_001 } } } }).success).toBe(
    false,
  );
  expect(configSchema.safeParse({ roles: { target: { batch: { completionWindow: '48h' } } } }).success).toBe(
    false,
  );
  // The API's limits per file: 50,000 requests and 200 MB; the spool is an absolute dir or s3://.
  const batch = (b: object) => configSchema.safeParse({ roles: { target: { batch: b } } }).success;
  expect(batch({ maxRequests: 50_000, maxBytes: 200_000_000, spool: 's3://bucket/spool' })).toBe(true);
  expect(batch({ maxBytes: 200_000_001 })).toBe(false);
  expect(batch({ spool: '/var/spool/codeclm' })).toBe(true);
  expect(batch({ spool: 'relative/dir' })).toBe(false);
});

test('a batch file that cannot be assembled leaves no temp file behind, and says why', async () => {
  const spool = openStore(tmpDir('codeclm-assemble-spool-'));
  const line = (id: string) =>
    JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: {} });
  const part = await writePart(spool, [line('a'), line('b')]);
  // Where each batch file is assembled (a temp dir of its own).
  const made: string[] = [];
  const mkdtemp = fs.promises.mkdtemp.bind(fs.promises);
  const spy = jest.spyOn(fs.promises, 'mkdtemp').mockImplementation(async (prefix: string) => {
    const dir = await mkdtemp(prefix);
    made.push(dir);
    return dir;
  });
  try {
    // The manifest's write fails (a full disk, an object store down): the assembled file goes.
    const failing = new Proxy(spool, {
      get: (target, prop) =>
        prop === 'write'
          ? (key: string, content: string) =>
              key.startsWith('batches/') ? Promise.reject(new Error('disk full')) : target.write(key, content)
          : Reflect.get(target, prop),
    }) as Store;
    await expect(assembleBatchFile(failing, 'k1', [], [{ part, ranges: [[0, 2]] }])).rejects.toThrow(
      'disk full',
    );
    // A part missing from the spool: named, and nothing left behind either.
    await expect(
      assembleBatchFile(spool, 'k2', [], [{ part: 'ab' + '0'.repeat(38), ranges: [[0, 1]] }]),
    ).rejects.toThrow(/part missing/);
    expect(made).toHaveLength(2);
    for (const dir of made) expect(fs.existsSync(dir)).toBe(false);
    // And when it works, the file holds the selected lines until the caller removes it.
    const file = await assembleBatchFile(spool, 'k3', [], [{ part, ranges: [[1, 2]] }]);
    expect(file.ids).toEqual(['b']);
    expect(fs.readFileSync(file.path, 'utf8')).toBe(line('b') + '\n');
    expect(file.bytes).toBe(Buffer.byteLength(line('b')) + 1);
    await file.remove();
    expect(fs.existsSync(made[2]!)).toBe(false);
  } finally {
    spy.mockRestore();
  }
});

test('a resubmission whose part was deleted from the spool fails with the reason; the rest of the batch goes on', async () => {
  const dir = tmpDir('codeclm-settle-spool-');
  const spool = openStore(dir);
  const line = (id: string) =>
    JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { id } });
  const kept = await writePart(spool, [line('a'), line('b')]);
  const deleted = await writePart(spool, [line('c'), line('d')]);
  fs.rmSync(`${dir}/${spoolKeys.part(deleted)}`);
  const rows = [
    { id: 'a', part: kept, index: 0 },
    { id: 'b', part: kept, index: 1 },
    { id: 'c', part: deleted, index: 0 },
    { id: 'd', part: deleted, index: 1 },
  ];
  const settled = await settleRows(
    spool,
    rows,
    [
      { id: 'a', kind: 'ok' },
      { id: 'b', kind: 'retry', reason: 'expired' },
      { id: 'c', kind: 'retry', reason: 'expired' },
      { id: 'd', kind: 'failed', reason: 'HTTP 400: bad request', status: 400 },
    ],
    '0000',
    3,
  );
  // b goes into another batch with its line; c cannot (its line is gone) and fails at once.
  expect(settled.codes).toBe('orff');
  expect(settled.retry!.bytes).toEqual([Buffer.byteLength(line('b')) + 1]);
  expect(fs.readFileSync(`${dir}/${spoolKeys.part(settled.retry!.part)}`, 'utf8')).toBe(line('b') + '\n');
  expect(await readOutcome(spool, 'c')).toEqual({
    state: 'failed',
    reason: expect.stringMatching(
      /batch spool .*: part missing \(was the spool deleted while the run was live\?\)/,
    ),
  });
  expect(await readOutcome(spool, 'd')).toMatchObject({ state: 'failed', status: 400 });
  expect(await readOutcome(spool, 'b')).toBeUndefined();

  // A line past the end of a present part: the same, named by its index.
  const past = await settleRows(
    spool,
    [{ id: 'e', part: kept, index: 5 }],
    [{ id: 'e', kind: 'retry', reason: 'x' }],
    '0',
    3,
  );
  expect(past).toEqual({ codes: 'f' });
  expect(await readOutcome(spool, 'e')).toMatchObject({ reason: expect.stringMatching(/line 5 missing/) });

  // The store unreachable may heal: thrown, so the poll is retried, and nothing is failed.
  const down = new Proxy(spool, {
    get: (target, prop) =>
      prop === 'exists' ? () => Promise.reject(new Error('connect ECONNREFUSED')) : Reflect.get(target, prop),
  }) as Store;
  await expect(
    settleRows(down, [rows[1]!], [{ id: 'b', kind: 'retry', reason: 'expired' }], '0', 3),
  ).rejects.toThrow('ECONNREFUSED');
  expect(await readOutcome(spool, 'b')).toBeUndefined();
});

test('a batch manifest deleted from the spool is told apart from a store error; its requests are not resubmitted', async () => {
  const dir = tmpDir('codeclm-manifest-spool-');
  const spool = openStore(dir);
  const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: {} });
  const part = await writePart(spool, [line]);
  const file = await assembleBatchFile(spool, 'k1', [], [{ part, ranges: [[0, 1]] }]);
  await file.remove();
  expect(await readManifestRows(spool, 'k1')).toEqual([{ id: 'a', part, index: 0 }]);
  fs.rmSync(`${dir}/${spoolKeys.manifest('k1')}`);
  expect(await readManifestRows(spool, 'k1')).toBeUndefined();
  expect(manifestGoneCodes('0a1')).toBe('fff');
});
