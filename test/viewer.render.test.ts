import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ViewerRow } from '../src/viewer/rows';
import { rowsOf } from '../src/viewer/rows';
import { judgementFile, judgementsDir } from '../src/viewer/store';
import { writeViewer } from '../src/viewer/write';
import { fixtureJudgements } from './viewer.fixture';
import { pngSize, runHeadless, testBrowser } from './helpers/browser';
import { tmpDir } from './helpers/env';

/**
 * viewer.html in a real headless browser (found or installed by src/browser/provision.ts) with
 * 20,000 judged instructions (about 40,000 judged iterations): the page loads all its data blocks,
 * shows one page of rows, and the filters in the URL hash change what is shown. Chromium's virtual
 * time lets the page finish reading its blocks (it reads one per timer tick) before the DOM is dumped.
 */
const INSTRUCTIONS = 20_000;
const out = tmpDir('codeclm-viewer-render-');
let url: string;
let rows: ViewerRow[];
let browser: string;

beforeAll(async () => {
  browser = await testBrowser();
  const judgements = fixtureJudgements(INSTRUCTIONS);
  for (const j of judgements) {
    const file = judgementFile(out, j.id);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(j));
  }
  rows = judgements.flatMap(rowsOf);
  url = pathToFileURL(writeViewer(out, judgementsDir(out), { runId: 'render-20k' }).file).href;
}, 20 * 60_000);

function dom(hash: string): string {
  const r = runHeadless(browser, ['--virtual-time-budget=60000', '--dump-dom', `${url}${hash}`], 150_000);
  expect(r.status).toBe(0);
  return r.stdout;
}
const attr = (html: string, name: string) => new RegExp(`<body[^>]*${name}="([^"]*)"`).exec(html)?.[1];
const shownCards = (html: string) => [...html.matchAll(/<details class="row ([a-z-]+)" data-key="([^"]+)"/g)];

test('the page loads every row and renders one page of them, not all', () => {
  const html = dom('');
  expect(attr(html, 'data-ready')).toBe('yes');
  expect(attr(html, 'data-matching')).toBe(String(rows.length));
  expect(rows.length).toBeGreaterThan(INSTRUCTIONS);
  expect(shownCards(html)).toHaveLength(50);
  expect(html).toContain(`${rows.length.toLocaleString('en-US')} judged iterations of 20,000 instructions`);
  expect(html).toMatch(/showing 1–50 of [\d,]+ matching/);
});

test('filters in the URL hash change what is shown: outcome, use case with iteration, and search', () => {
  const dropped = dom('#out=dropped');
  const droppedCount = rows.filter((r) => r.d === 'dropped').length;
  expect(attr(dropped, 'data-matching')).toBe(String(droppedCount));
  const cards = shownCards(dropped);
  expect(cards).toHaveLength(50);
  for (const c of cards) expect(c[1]).toBe('dropped');
  expect(dropped).toContain('still too easy at the last iteration');

  const mixed = dom('#uc=Math%20tutoring&it=2&page=3');
  const mixedRows = rows.filter((r) => r.uc === 'Math tutoring' && r.it === 2);
  expect(attr(mixed, 'data-matching')).toBe(String(mixedRows.length));
  expect(mixed).toContain(`showing 101–150 of ${mixedRows.length.toLocaleString('en-US')} matching`);
  for (const c of shownCards(mixed)) expect(c[2]).toMatch(/@2$/);

  const one = rows[12_345]!;
  const found = dom(`#q=${encodeURIComponent(one.id)}&open=${encodeURIComponent(`${one.id}@${one.it}`)}`);
  const keys = shownCards(found).map((c) => c[2]);
  expect(keys).toEqual(rows.filter((r) => r.id === one.id).map((r) => `${r.id}@${r.it}`));
  // The opened row shows both answers and both judge orders.
  expect(found).toContain(`<details class="row ${one.d}" data-key="${one.id}@${one.it}" open="">`);
  expect(found).toContain(one.at);
  expect(found).toContain('strong first');
  expect(found).toContain('target first');
});

test('a screenshot of a filtered view is written', () => {
  const png = path.join(out, 'viewer.png');
  const r = runHeadless(browser, [
    '--virtual-time-budget=60000',
    `--screenshot=${png}`,
    '--window-size=1200,900',
    `${url}#out=kept-target`,
  ]);
  expect(r.status).toBe(0);
  const bytes = fs.readFileSync(png);
  expect(pngSize(bytes)).toEqual({ width: 1200, height: 900 });
  expect(bytes.length).toBeGreaterThan(30_000); // drawn rows, not a blank page
});
