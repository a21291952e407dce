import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../src/store/open';
import { SnapshotCache } from '../src/store/snapshotCache';
import type { Store } from '../src/store/store';
import { tmpDir } from './helpers/env';

/** The per-process cache of a run's seed snapshot and an evaluation's instruction snapshot. */
test('activities asking at once share one parse; a changed snapshot is read again', async () => {
  const dir = tmpDir('codeclm-snapcache-');
  const store = openStore(dir);
  await store.write('seeds.jsonl', '{"n":1}\n\n{"n":2}\n');
  let parsed = 0;
  const cache = new SnapshotCache<{ n: number }>('seed snapshot', (l) => {
    parsed++;
    return JSON.parse(l) as { n: number };
  });
  const all = await Promise.all(Array.from({ length: 64 }, () => cache.get(store, 'seeds.jsonl')));
  expect(parsed).toBe(2);
  for (const items of all) expect(items).toEqual([{ n: 1 }, { n: 2 }]);

  // Rewritten (another tag): parsed again, the new content.
  await new Promise((r) => setTimeout(r, 20));
  await store.write('seeds.jsonl', '{"n":3}\n');
  const t = new Date(Date.now() + 5_000);
  fs.utimesSync(path.join(dir, 'seeds.jsonl'), t, t);
  expect(await cache.get(store, 'seeds.jsonl')).toEqual([{ n: 3 }]);
  expect(parsed).toBe(3);
});

test('a missing snapshot is an input error naming it; a failed read is not kept', async () => {
  const store = openStore(tmpDir('codeclm-snapcache-'));
  const cache = new SnapshotCache<unknown>('instruction snapshot', (l) => JSON.parse(l) as unknown);
  await expect(cache.get(store, 'eval/instructions.jsonl')).rejects.toMatchObject({
    type: 'InputError',
    message: `no instruction snapshot at ${store.where('eval/instructions.jsonl')}`,
  });
  await store.write('eval/instructions.jsonl', '{"a":1}\n');
  let fail = true;
  const flaky = new Proxy(store, {
    get: (target, prop) =>
      prop === 'lines'
        ? (key: string) => {
            if (fail) throw new Error('connection reset');
            return target.lines(key);
          }
        : Reflect.get(target, prop),
  }) as Store;
  await expect(cache.get(flaky, 'eval/instructions.jsonl')).rejects.toThrow('connection reset');
  fail = false;
  expect(await cache.get(flaky, 'eval/instructions.jsonl')).toEqual([{ a: 1 }]);
});
