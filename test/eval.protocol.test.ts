import fs from 'node:fs';
import path from 'node:path';
import {
  crrCell,
  scoresFromJudgements,
  summariseCrr,
  verdict,
  NO_CATEGORY,
  type Verdict,
} from '../src/report/crr';
import { loadInstructionSet } from '../src/activities/eval';
import { tmpDir } from './helpers/env';

/** The judge protocol of docs/method.md section 7 on fixed scores: no server, no model. */

// Judge outputs are by position: call 1 shows the target's answer as A, call 2 shows the strong answer as A.
const j = (score_a: number, score_b: number) => ({ score_a, score_b });

describe('scores by position become scores by owner', () => {
  test('order 1 has target as A, order 2 has strong as A', () => {
    expect(scoresFromJudgements(j(7, 4), j(9, 2))).toEqual({
      target_first: { target: 7, strong: 4 },
      strong_first: { target: 2, strong: 9 },
    });
  });
});

describe('verdict: a win needs a win in both orders', () => {
  test('target higher in both orders: target wins', () => {
    expect(verdict(scoresFromJudgements(j(8, 6), j(5, 9)))).toBe('target');
  });
  test('strong higher in both orders: strong wins', () => {
    expect(verdict(scoresFromJudgements(j(3, 8), j(9, 4)))).toBe('strong');
  });
  test('position bias (whoever is shown first wins): swap-inconsistent, so a tie', () => {
    // First position always scores higher: target wins order 1, strong wins order 2.
    expect(verdict(scoresFromJudgements(j(8, 6), j(8, 6)))).toBe('tie');
  });
  test('the opposite inconsistency (second position wins) is a tie too', () => {
    expect(verdict(scoresFromJudgements(j(5, 7), j(5, 7)))).toBe('tie');
  });
  test('equal scores in both orders: tie', () => {
    expect(verdict(scoresFromJudgements(j(6, 6), j(6, 6)))).toBe('tie');
  });
  test('a win in one order and an equal score in the other is a tie, not a win', () => {
    expect(verdict(scoresFromJudgements(j(9, 3), j(5, 5)))).toBe('tie');
    expect(verdict(scoresFromJudgements(j(5, 5), j(9, 3)))).toBe('tie');
  });
  test('the size of a margin does not matter, only its sign in each order', () => {
    expect(verdict(scoresFromJudgements(j(1, 10), j(1.5, 1)))).toBe('strong');
    expect(verdict(scoresFromJudgements(j(6.5, 6), j(6, 6.5)))).toBe('target');
  });
  test('swap symmetry: exchanging the two orders never changes the verdict', () => {
    const grid = [1, 4, 5, 6, 10];
    for (const a of grid)
      for (const b of grid)
        for (const c of grid)
          for (const d of grid) {
            const s = scoresFromJudgements(j(a, b), j(c, d));
            const swapped = { target_first: s.strong_first, strong_first: s.target_first };
            expect(verdict(swapped)).toBe(verdict(s));
          }
  });
  test('exchanging the roles of the two answers mirrors the verdict', () => {
    const mirror: Record<Verdict, Verdict> = { target: 'strong', strong: 'target', tie: 'tie' };
    const grid = [2, 5, 8];
    for (const a of grid)
      for (const b of grid)
        for (const c of grid)
          for (const d of grid) {
            const s = scoresFromJudgements(j(a, b), j(c, d));
            const roles = {
              target_first: { target: s.target_first.strong, strong: s.target_first.target },
              strong_first: { target: s.strong_first.strong, strong: s.strong_first.target },
            };
            expect(verdict(roles)).toBe(mirror[verdict(s)]);
          }
  });
});

describe('CRR arithmetic', () => {
  test('CRR = (target wins + ties) / total', () => {
    const v: Verdict[] = ['target', 'tie', 'tie', 'strong', 'strong', 'strong', 'target', 'tie'];
    const c = crrCell(v);
    expect(c).toEqual({ total: 8, target_wins: 2, ties: 3, strong_wins: 3, crr: 5 / 8, crr_percent: 62.5 });
  });
  test('all strong wins give 0, all ties give 1 (ties count as recovered)', () => {
    expect(crrCell(['strong', 'strong']).crr).toBe(0);
    expect(crrCell(['tie', 'tie', 'tie']).crr).toBe(1);
  });
  test('nothing judged: CRR is n/a (null), not 0 or NaN', () => {
    expect(crrCell([])).toMatchObject({ total: 0, crr: null, crr_percent: null });
  });
  test('percent is rounded to two decimals like the paper (e.g. 79.82)', () => {
    // 174 of 218 recovered on Evol-Instruct's test set = 79.816...%
    const v: Verdict[] = [
      ...Array(120).fill('target'),
      ...Array(54).fill('tie'),
      ...Array(44).fill('strong'),
    ];
    expect(crrCell(v).crr_percent).toBe(79.82);
  });
});

describe('CRR per category', () => {
  test('each category has its own table row and the overall row covers all items', () => {
    const items = [
      { category: 'math', verdict: 'strong' as const },
      { category: 'math', verdict: 'tie' as const },
      { category: 'writing', verdict: 'target' as const },
      { category: 'writing', verdict: 'target' as const },
      { category: 'coding', verdict: 'strong' as const },
    ];
    const s = summariseCrr(items);
    expect(Object.keys(s.by_category)).toEqual(['coding', 'math', 'writing']);
    expect(s.by_category.math).toMatchObject({ total: 2, ties: 1, strong_wins: 1, crr: 0.5 });
    expect(s.by_category.writing).toMatchObject({ total: 2, target_wins: 2, crr: 1 });
    expect(s.by_category.coding).toMatchObject({ total: 1, crr: 0 });
    expect(s.overall).toMatchObject({ total: 5, target_wins: 2, ties: 1, strong_wins: 2, crr: 0.6 });
    const sum = Object.values(s.by_category).reduce((a, c) => a + c.total, 0);
    expect(sum).toBe(s.overall.total);
  });
  test('no categories in the file: only the overall figure', () => {
    const s = summariseCrr([{ verdict: 'tie' }, { verdict: 'strong' }]);
    expect(s.by_category).toEqual({});
    expect(s.overall.crr).toBe(0.5);
  });
  test('some items without a category are grouped, not lost', () => {
    const s = summariseCrr([
      { category: 'math', verdict: 'tie' },
      { category: null, verdict: 'strong' },
    ]);
    expect(s.by_category[NO_CATEGORY]).toMatchObject({ total: 1, crr: 0 });
  });
});

describe('instruction sets keep their categories', () => {
  test('a category field is read alongside any instruction field', () => {
    const dir = tmpDir('codeclm-evalset-');
    const file = path.join(dir, 'set.jsonl');
    fs.writeFileSync(
      file,
      [
        JSON.stringify({ question_id: 1, category: 'math', turns: ['What is 2+2?'] }),
        JSON.stringify({ question_id: 2, turns: ['Name a colour.'] }),
        JSON.stringify({ question_id: 3, category: ' Writing ', turns: ['Write a line about rain.'] }),
      ].join('\n'),
    );
    const set = loadInstructionSet(file);
    expect(set.instructions.map((i) => [i.id, i.category])).toEqual([
      ['1', 'math'],
      ['2', undefined],
      ['3', 'Writing'],
    ]);
    expect(set.categorised).toBe(2);
  });
  test('the bundled example set has a category on every line', () => {
    const set = loadInstructionSet(path.join(__dirname, '..', 'examples', 'eval', 'instructions.jsonl'));
    expect(set.instructions.length).toBeGreaterThanOrEqual(20);
    expect(set.categorised).toBe(set.instructions.length);
  });
  test('CSV columns work too, and --category-field picks another column', () => {
    const dir = tmpDir('codeclm-evalset-');
    const file = path.join(dir, 'set.csv');
    fs.writeFileSync(file, 'prompt,topic\n"Explain tides.",science\n"Write a limerick.",fun\n');
    const set = loadInstructionSet(file, { categoryField: 'topic' });
    expect(set.instructions.map((i) => i.category)).toEqual(['science', 'fun']);
  });
});
