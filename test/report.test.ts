import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { iterationRows, jensenShannon } from '../src/report/build';
import { computeCost } from '../src/report/cost';
import { niceScale } from '../src/report/svg';
import { sizeCategory } from '../src/report/card';
import { CARD_MARKER, writeRunOutputs } from '../src/report/write';
import { emptyCounters } from '../src/schemas/run';
import { fixtureReport } from './report.fixture';
import { tmpDir } from './helpers/env';

/** The run report, its charts and the dataset card, from a fixed report: no server, no model. */

describe('report arithmetic', () => {
  test('Jensen-Shannon divergence: 0 for the same mix, 1 for disjoint sets, symmetric, scale-free', () => {
    expect(jensenShannon({ a: 2, b: 2 }, { a: 5, b: 5 })).toBe(0);
    expect(jensenShannon({ a: 1 }, { b: 3 })).toBe(1);
    const p = { a: 3, b: 1, c: 1 };
    const q = { a: 1, b: 2, d: 2 };
    expect(jensenShannon(p, q)).toBe(jensenShannon(q, p));
    expect(jensenShannon(p, q)).toBeGreaterThan(0);
    expect(jensenShannon(p, q)).toBeLessThan(1);
    // {1/2, 1/2} vs {1, 0}: M = {3/4, 1/4}; JS = 1/2 KL(P||M) + 1/2 KL(Q||M)
    const expected =
      0.5 * (0.5 * Math.log2(0.5 / 0.75) + 0.5 * Math.log2(0.5 / 0.25)) + 0.5 * Math.log2(1 / 0.75);
    expect(jensenShannon({ a: 1, b: 1 }, { a: 1 })).toBeCloseTo(expected, 4);
    expect(jensenShannon({}, { a: 1 })).toBeNull();
  });

  test('per-iteration rows: judged = kept + improved again (+ dropped at the cap)', () => {
    const c = {
      ...emptyCounters(),
      keptByIteration: { '1': 3, '2': 2, '4': 1 },
      judgedByIteration: { '1': 8, '2': 5, '3': 3, '4': 3 },
      droppedAtCap: 2,
    };
    const rows = iterationRows(c, 4);
    expect(rows).toEqual([
      { iteration: 1, judged: 8, kept: 3, too_easy: 5, dropped: 0 },
      { iteration: 2, judged: 5, kept: 2, too_easy: 3, dropped: 0 },
      { iteration: 3, judged: 3, kept: 0, too_easy: 3, dropped: 0 },
      { iteration: 4, judged: 3, kept: 1, too_easy: 0, dropped: 2 },
    ]);
  });

  test('cost: per role prices per million tokens; unpriced roles are named, not counted as free', () => {
    const usage = {
      'answer/strong': { calls: 1, promptTokens: 1_000_000, completionTokens: 500_000 },
      'answer/target': { calls: 1, promptTokens: 2_000_000, completionTokens: 0 },
    };
    const cost = computeCost(usage, { strong: { in: 2, out: 8 }, target: {} })!;
    expect(cost.total_usd).toBe(6);
    expect(cost.per_role_usd).toEqual({ strong: 6 });
    expect(cost.unpriced_roles).toEqual(['target']);
    expect(computeCost(usage, { strong: {}, target: {} })).toBeNull();
  });

  test('axis scales are round numbers that cover the data', () => {
    expect(niceScale(7)).toEqual({ max: 8, step: 2 });
    expect(niceScale(0.37).max).toBeGreaterThanOrEqual(0.37);
    expect(niceScale(0)).toEqual({ max: 1, step: 0.2 });
  });

  test('size categories follow the Hub names', () => {
    expect(sizeCategory(0)).toBe('n<1K');
    expect(sizeCategory(2000)).toBe('1K<n<10K');
    expect(sizeCategory(250_000)).toBe('100K<n<1M');
  });
});

describe('report files', () => {
  const out = tmpDir('codeclm-report-');
  const report = fixtureReport();
  let files: Awaited<ReturnType<typeof writeRunOutputs>>;
  beforeAll(async () => {
    files = await writeRunOutputs(out, report);
  });
  const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');

  test('report.json holds the new sections', () => {
    const json = JSON.parse(read('report.json'));
    expect(json.iterations).toHaveLength(4);
    expect(json.divergence.use_cases.seeds_pool).toBeGreaterThanOrEqual(0);
    expect(json.usage.cost.total_usd).toBeGreaterThan(0);
    expect(json.config.roles.target.model).toBe('small-model');
    expect(JSON.stringify(json)).not.toMatch(/apiKey"\s*:\s*"sk-/);
  });

  test('report.md links every chart, and each chart is a standalone SVG file', () => {
    const md = read('report.md');
    expect(files.charts.length).toBeGreaterThanOrEqual(6);
    for (const file of files.charts) {
      const name = `charts/${path.basename(file)}`;
      expect(md).toContain(`](${name})`);
      const svg = fs.readFileSync(file, 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
      expect(svg).not.toMatch(/<script|NaN|undefined|Infinity/);
    }
    for (const section of [
      'Counts per stage',
      'Kept per iteration',
      'Score gap',
      'Jensen-Shannon',
      'LLM calls and tokens',
      'Failures',
    ])
      expect(md).toContain(section);
    expect(md).toContain('cost $');
    // A pipe inside a failure reason must not break the table.
    expect(md).toContain('expected number <= 10 \\| got 11');
  });

  test('report.html is self-contained: inline SVG charts, no scripts, nothing fetched', () => {
    const html = read('report.html');
    expect((html.match(/<svg /g) ?? []).length).toBe(files.charts.length);
    expect(html).not.toMatch(/<script|<link |src="http|href="http/);
    // Text from the run is escaped, not interpreted.
    expect(html).toContain('400 &lt;content policy&gt;');
    // It points at the files beside it (relative links, so the out dir can move).
    expect(html).toContain('<a href="viewer.html">viewer.html</a>');
    expect(read('report.md')).toContain('[viewer.html](viewer.html)');
  });

  test('README.md is a Hugging Face dataset card pointing at dataset.jsonl', () => {
    const card = read('README.md');
    const header = /^---\n([\s\S]*?)\n---\n/.exec(card);
    expect(header).not.toBeNull();
    const meta = YAML.parse(header![1]!);
    expect(meta.configs).toEqual([
      { config_name: 'default', data_files: [{ split: 'train', path: 'dataset.jsonl' }] },
    ]);
    expect(meta.license).toBeDefined();
    expect(meta.task_categories).toContain('text-generation');
    expect(meta.language).toEqual(['en']);
    expect(meta.size_categories).toEqual(['n<1K']);
    expect(meta.tags).toContain('synthetic');
    expect(meta.dataset_info.splits[0].num_examples).toBe(6);
    const body = card.slice(header![0].length);
    expect(body).toContain(CARD_MARKER);
    for (const text of [
      'big-model',
      'small-model',
      'theta = 3',
      'Self-Rubrics',
      'Contrastive Filtering',
      '## Fields',
    ])
      expect(body).toContain(text);
    expect(body).not.toContain('Test data, not model output');
  });

  test("a user's own README.md in the out dir is left alone; codeclm's own card is refreshed", async () => {
    const dir = tmpDir('codeclm-report-');
    fs.writeFileSync(path.join(dir, 'README.md'), '# my notes\n');
    expect((await writeRunOutputs(dir, report)).card).toBeUndefined();
    expect(fs.readFileSync(path.join(dir, 'README.md'), 'utf8')).toBe('# my notes\n');
    expect((await writeRunOutputs(out, report)).card).toBe(path.join(out, 'README.md'));
  });

  test('without prices there is no cost, and the report says how to get one', async () => {
    const dir = tmpDir('codeclm-report-');
    await writeRunOutputs(dir, fixtureReport({ prices: false }));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).usage.cost).toBeNull();
    expect(fs.readFileSync(path.join(dir, 'report.md'), 'utf8')).toContain('pricePerMTokIn');
  });
});
