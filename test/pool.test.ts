import { allocate, mixAndMatch } from '../src/activities/pool';
import { methodSchema } from '../src/schemas/config';
import type { Metadata } from '../src/schemas/records';
import { combineJudgements, keptSource } from '../src/tasks/judge';
import { normaliseMetadata } from '../src/tasks/encode';

const method = methodSchema.parse({});
const encoded: Metadata[] = [
  ...Array.from({ length: 30 }, () => ({
    use_case: 'python programming',
    skills: ['debugging', 'code review'],
  })),
  ...Array.from({ length: 10 }, () => ({
    use_case: 'travel planning',
    skills: ['itinerary design', 'budgeting'],
  })),
];

test('the pool is reproducible from the run seed and changes with it', () => {
  expect(mixAndMatch(encoded, method)).toEqual(mixAndMatch(encoded, method));
  expect(mixAndMatch(encoded, { ...method, runSeed: 43 })).not.toEqual(mixAndMatch(encoded, method));
});

test('the pool has the configured size, 1-3 distinct skills per entry, and follows the seed distribution', () => {
  const pool = mixAndMatch(encoded, method);
  expect(pool).toHaveLength(200);
  for (const e of pool) {
    expect(e.skills.length).toBeGreaterThanOrEqual(1);
    expect(e.skills.length).toBeLessThanOrEqual(3);
    expect(new Set(e.skills).size).toBe(e.skills.length);
  }
  const python = pool.filter((e) => e.use_case === 'python programming').length / pool.length;
  expect(python).toBeGreaterThan(0.6); // seeds: 75%
  expect(python).toBeLessThan(0.9);
});

test('allocation gives every entry an equal share of the budget', () => {
  const pool = mixAndMatch(encoded, method);
  const entries = allocate(pool, 1000);
  expect(entries.reduce((a, e) => a + e.instructions, 0)).toBe(1000);
  expect(new Set(entries.map((e) => e.instructions))).toEqual(new Set([5]));
  const small = allocate(pool, 30);
  expect(small.reduce((a, e) => a + e.instructions, 0)).toBe(30);
  expect(Math.max(...small.map((e) => e.instructions))).toBe(1);
});

test('judge scores of both orders are averaged per answer', () => {
  // Strong first: A=strong 9, B=target 4. Swapped: A=target 5, B=strong 8.
  expect(combineJudgements({ score_a: 9, score_b: 4 }, { score_a: 5, score_b: 8 })).toEqual({
    strong: 8.5,
    target: 4.5,
    gap: 4,
  });
});

test('metadata is normalised so the same skill written twice counts once', () => {
  expect(
    normaliseMetadata(
      {
        use_case: '  Business Plan  Development.',
        skills: ['Market Research', 'market  research', 'SWOT-analysis', 'a', 'b'],
      },
      3,
    ),
  ).toEqual({
    use_case: 'business plan development',
    skills: ['market research', 'swot analysis', 'a'],
  });
});

test('the filter keeps the strong answer above theta, the target below -theta, nothing in between', () => {
  const method = { theta: 3 };
  expect(keptSource({ strong: 9, gap: 3.5 }, method)).toBe('strong');
  expect(keptSource({ strong: 9, gap: 3 }, method)).toBeUndefined();
  expect(keptSource({ strong: 2, gap: -3 }, method)).toBeUndefined();
  expect(keptSource({ strong: 2, gap: -3.5 }, method)).toBe('target');
  expect(keptSource({ strong: 6, gap: 4 }, { theta: 3, minStrongScore: 7 })).toBeUndefined();
});
