import type { Store } from '../../src/store/store';
import { collect } from '../../src/store/store';
import { withLock } from '../../src/quality/store';

/**
 * What every Store must do, run against the local directory and against real MinIO alike: the
 * pipeline's retry safety rests on these (whole writes, one copy per key, exclusive creation).
 */
export function storeContract(name: string, open: () => Store): void {
  describe(`${name} store`, () => {
    test('a missing key reads as undefined, a written one reads back; rewriting leaves one copy', async () => {
      const s = open();
      expect(await s.read('a/missing.json')).toBeUndefined();
      expect(await s.readJson('a/missing.json')).toBeUndefined();
      expect(await s.exists('a/missing.json')).toBe(false);
      await s.writeJson('a/b/one.json', { n: 1 });
      await s.writeJson('a/b/one.json', { n: 2 });
      expect(await s.readJson('a/b/one.json')).toEqual({ n: 2 });
      expect(await s.list('a')).toEqual(['a/b/one.json']);
      expect(await s.exists('a/b/one.json')).toBe(true);
      expect((await s.stat('a/b/one.json'))!.tag).toBeTruthy();
    });

    test('createIfAbsent: of many concurrent creators exactly one wins, and the object keeps its content', async () => {
      const s = open();
      const wins = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.createIfAbsent('claims/k.json', `{"owner":"w${i}"}`)),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
      const owner = (await s.readJson<{ owner: string }>('claims/k.json'))!.owner;
      expect(owner).toBe(`w${wins.indexOf(true)}`);
    });

    test('createIfAbsent: a reader sees nothing or the whole object, never a part (a loser reads the owner)', async () => {
      const s = open();
      // Large enough that writing it takes many steps: a reader polling meanwhile would catch a part.
      const content = JSON.stringify({ owner: 'w'.repeat(4 << 20) });
      const creating = s.createIfAbsent('claims/big.json', content);
      let seen: string | undefined;
      while (seen === undefined) seen = await s.read('claims/big.json');
      expect(await creating).toBe(true);
      expect(seen.length).toBe(content.length);
      expect(await s.list('claims')).toEqual(['claims/big.json']);
    });

    test('the quality lock: one holder at a time, even a holder that takes longer than a stale lock', async () => {
      const s = open();
      // A lock counts as stale after 3 s here (60 s in runs; S3 dates objects to the second); each
      // holder takes 3.5 s. A holder that is alive keeps its lock (a slow screening on a busy store
      // must not be joined by another one).
      const staleMs = 3000;
      let holders = 0;
      let most = 0;
      const hold = () =>
        withLock(
          s,
          'locks/lock',
          async () => {
            most = Math.max(most, ++holders);
            await new Promise((r) => setTimeout(r, 3500));
            holders--;
          },
          staleMs,
        );
      await Promise.all([hold(), hold()]);
      expect(most).toBe(1);
      expect(await s.exists('locks/lock')).toBe(false);
    }, 30_000);

    test('list is recursive and sorted; listDirs gives one level; removeAll empties a prefix only', async () => {
      const s = open();
      for (const k of ['d/x/2.json', 'd/x/1.json', 'd/y/3.json', 'dd/4.json']) await s.write(k, '{}');
      expect(await s.list('d')).toEqual(['d/x/1.json', 'd/x/2.json', 'd/y/3.json']);
      expect(await s.listDirs('d')).toEqual(['x', 'y']);
      await s.removeAll('d/x');
      expect(await s.list('d')).toEqual(['d/y/3.json']);
      expect(await s.list('dd')).toEqual(['dd/4.json']);
      await s.remove('dd/4.json');
      expect(await s.list('dd')).toEqual([]);
    });

    test('writeStream lands the whole stream; lines streams it back, split at newlines only', async () => {
      const s = open();
      const lines = Array.from({ length: 3000 }, (_, i) =>
        JSON.stringify({ i, text: `é${'x'.repeat(i % 97)}` }),
      );
      await s.writeStream(
        'out/data.jsonl',
        (async function* () {
          for (const l of lines) yield `${l}\n`;
        })(),
      );
      expect(await collect(s.lines('out/data.jsonl'))).toEqual(lines);
      expect(await collect(s.lines('out/none.jsonl'))).toEqual([]);
    });

    test('a stream that fails part-way leaves no object behind', async () => {
      const s = open();
      await expect(
        s.writeStream(
          'out/broken.jsonl',
          (async function* () {
            yield 'first line\n';
            throw new Error('source broke');
          })(),
        ),
      ).rejects.toThrow('source broke');
      expect(await s.exists('out/broken.jsonl')).toBe(false);
    });
  });
}
