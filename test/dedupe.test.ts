import fs from 'node:fs';
import path from 'node:path';
import {
  bandKeys,
  bandsFor,
  candidateProbability,
  estimatedSimilarity,
  signature,
} from '../src/quality/minhash';
import { minhashParams, screenBatch, type ScreenItem } from '../src/quality/screen';
import { dedupeSettings } from '../src/quality/settings';
import { jaccard, normalise, shingles } from '../src/quality/text';
import { createQualityActivities } from '../src/activities/quality';
import { methodSchema } from '../src/schemas/config';
import { paraphrase } from '../src/sim/content';
import { prng } from '../src/sim/prng';
import { tmpDir } from './helpers/env';

/** Unit tests of near-duplicate removal (src/quality): MinHash, LSH banding, the on-disk index. */

const near = { mode: 'near' as const, threshold: 0.8, shingle: 3 };
const params = minhashParams(near, 42);

const base = [
  'Explain how to approach saving for a first home to a busy parent, showing good budgeting.',
  'Write a short practical guide about container gardening on a balcony for a retired teacher.',
  'What are the most common mistakes people make with sourdough starters, and how can they be avoided?',
  'Compare two different ways of handling a noisy neighbour and recommend one for a university student.',
  'I only have one evening to deal with my tax return. Walk me through it step by step.',
  'Draft a checklist for moving house with two cats, with a one-line reason for every item.',
  'Give me three creative ideas for a ten-year-old birthday party and say which one you would pick and why.',
  'Summarise what a curious teenager should know about compound interest in a few paragraphs.',
];

function sharesBand(a: string, b: string): boolean {
  const ka = bandKeys(signature(a, params), params);
  const kb = bandKeys(signature(b, params), params);
  return ka.some((k, i) => k === kb[i]);
}

describe('text normalisation and shingles', () => {
  test('case, punctuation and spacing do not make a text new', () => {
    expect(normalise('  Hello,   WORLD!  How are you? ')).toBe('hello world how are you');
    expect(shingles('A b c d', 3)).toEqual(new Set(['a b c', 'b c d']));
    expect(shingles('Too short', 3)).toEqual(new Set(['too short']));
  });
});

describe('MinHash and LSH', () => {
  test('signatures are deterministic per run seed and differ across seeds', () => {
    const s1 = signature(base[0]!, params);
    expect(signature(base[0]!, params)).toEqual(s1);
    expect(signature(base[0]!, minhashParams(near, 43))).not.toEqual(s1);
    expect(s1).toHaveLength(params.perm);
  });

  test('the agreement of two signatures estimates the Jaccard similarity', () => {
    for (let i = 0; i < base.length; i++) {
      const p = paraphrase(base[i]!, prng(i));
      const truth = jaccard(shingles(base[i]!, 3), shingles(p, 3));
      const est = estimatedSimilarity(signature(base[i]!, params), signature(p, params));
      expect(Math.abs(est - truth)).toBeLessThan(0.15);
    }
  });

  test('paraphrases share a bucket, unrelated texts do not', () => {
    for (let i = 0; i < base.length; i++) {
      const p = `Please ${base[i]!.charAt(0).toLowerCase()}${base[i]!.slice(1)}`;
      expect(jaccard(shingles(base[i]!, 3), shingles(p, 3))).toBeGreaterThan(0.8);
      expect(sharesBand(base[i]!, p)).toBe(true);
    }
    for (let i = 0; i < base.length; i++)
      for (let j = i + 1; j < base.length; j++) expect(sharesBand(base[i]!, base[j]!)).toBe(false);
  });

  test('bands and rows put the S-curve below the threshold', () => {
    for (const t of [0.5, 0.7, 0.8, 0.9, 0.95]) {
      const b = bandsFor(t);
      expect(b.bands * b.rows).toBe(128);
      expect(candidateProbability(t, b)).toBeGreaterThan(0.99);
      // Unrelated texts (similarity ~0.1) rarely even become candidates at the usual thresholds.
      if (t >= 0.7) expect(candidateProbability(0.1, b)).toBeLessThan(0.01);
    }
  });
});

describe('screening decode batches against the on-disk index', () => {
  const items = (texts: string[], prefix = 'r1-e00000-i'): ScreenItem[] =>
    texts.map((text, i) => ({ id: `${prefix}${String(i).padStart(4, '0')}`, text }));

  test('exact mode removes copies (case and punctuation aside) and keeps paraphrases', async () => {
    const dir = tmpDir('codeclm-dedupe-');
    const para = `Please ${base[0]!.toLowerCase()}`;
    const r = await screenBatch(
      dir,
      items([base[0]!, base[1]!, base[0]!.toUpperCase().replace(/\./g, '!'), para]),
      {
        dedupe: { ...near, mode: 'exact' },
        seed: 42,
        decontaminate: false,
      },
    );
    expect(r.keep).toEqual(['r1-e00000-i0000', 'r1-e00000-i0001', 'r1-e00000-i0003']);
    expect(r.removed).toEqual([
      expect.objectContaining({ id: 'r1-e00000-i0002', reason: 'exact-duplicate', of: 'r1-e00000-i0000' }),
    ]);
  });

  test('near mode removes paraphrases at the threshold, first come first kept, across batches', async () => {
    const dir = tmpDir('codeclm-dedupe-');
    const opts = { dedupe: near, seed: 42, decontaminate: false };
    const first = await screenBatch(dir, items(base.slice(0, 4)), opts);
    expect(first.keep).toHaveLength(4);
    const rand = prng(7);
    const paras = base.slice(0, 4).map((t) => `Please ${t.charAt(0).toLowerCase()}${t.slice(1)}`);
    const later = await screenBatch(
      dir,
      items([...paras, base[5]!, paraphrase(base[6]!, rand)], 'r1-e00001-i'),
      opts,
    );
    // The four paraphrases of batch 1's instructions go; the new text and a paraphrase of a new text stay
    // unless it repeats one of the same batch (it does not here).
    expect(later.removed.map((r) => r.of)).toEqual(first.keep);
    for (const r of later.removed) {
      expect(r.reason).toBe('near-duplicate');
      expect(r.similarity).toBeGreaterThanOrEqual(0.8);
    }
    expect(later.keep).toEqual(['r1-e00001-i0004', 'r1-e00001-i0005']);
  });

  test('a pair below the threshold is kept; raising the threshold keeps more', async () => {
    const a = base[1]!;
    const b = a.replace('retired teacher', 'busy parent');
    const sim = jaccard(shingles(a, 3), shingles(b, 3));
    expect(sim).toBeGreaterThan(0.6);
    expect(sim).toBeLessThan(0.8);
    const at = async (threshold: number) =>
      (
        await screenBatch(tmpDir('codeclm-dedupe-'), items([a, b]), {
          dedupe: { ...near, threshold },
          seed: 42,
          decontaminate: false,
        })
      ).keep.length;
    expect(await at(0.8)).toBe(2);
    expect(await at(0.6)).toBe(1);
  });

  test('the same run seed gives the same survivors', async () => {
    const rand = prng(3);
    const texts = base.flatMap((t) => [t, paraphrase(t, rand), paraphrase(t, rand)]);
    const run = () =>
      screenBatch(tmpDir('codeclm-dedupe-'), items(texts), { dedupe: near, seed: 42, decontaminate: false });
    expect(await run()).toEqual(await run());
  });

  test('a retried screening returns the stored decision; concurrent batches never both keep a text', async () => {
    const dir = tmpDir('codeclm-dedupe-');
    const acts = createQualityActivities();
    const method = methodSchema.parse({ dedupe: { mode: 'near', threshold: 0.8 } });
    const once = await acts.screenInstructions({
      outDir: dir,
      batch: 'r1-e00000-b0000',
      items: items(base.slice(0, 3)),
      method,
      decontaminate: false,
    });
    // A retry of the same batch (its items now already in the index) decides the same.
    const again = await acts.screenInstructions({
      outDir: dir,
      batch: 'r1-e00000-b0000',
      items: items(base.slice(0, 3)),
      method,
      decontaminate: false,
    });
    expect(again).toEqual(once);
    expect(once.keep).toHaveLength(3);
    const parallel = await Promise.all(
      [1, 2, 3, 4].map((e) =>
        acts.screenInstructions({
          outDir: dir,
          batch: `r1-e0000${e}-b0000`,
          items: items([base[7]!], `r1-e0000${e}-i`),
          method,
          decontaminate: false,
        }),
      ),
    );
    expect(parallel.flatMap((p) => p.keep)).toHaveLength(1);
    expect(fs.existsSync(path.join(dir, '.work', 'quality', 'lock'))).toBe(false);
  });

  test('old configs: dedupeInstructions true is exact dedupe; dedupe wins when both are set', () => {
    expect(dedupeSettings(methodSchema.parse({ dedupeInstructions: true })).mode).toBe('exact');
    expect(dedupeSettings(methodSchema.parse({})).mode).toBe('off');
    expect(dedupeSettings(methodSchema.parse({ dedupeInstructions: true, dedupe: 'near' }))).toEqual({
      mode: 'near',
      threshold: 0.8,
      shingle: 3,
    });
    expect(() => methodSchema.parse({ dedupe: 'fuzzy' })).toThrow();
    expect(() => methodSchema.parse({ dedupe: { mode: 'near', threshold: 1.5 } })).toThrow();
  });
});
