import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ViewerRow } from '../src/viewer/rows';
import { rowsOf } from '../src/viewer/rows';
import { judgementFile } from '../src/viewer/store';
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
  url = pathToFileURL((await writeViewer(out, { runId: 'render-20k' })).file).href;
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

/**
 * The controls themselves: a page next to viewer.html loads it in an iframe (same directory, so
 * --allow-file-access-from-files lets it reach in), changes the outcome select, types a search,
 * pages on and resets, as a user would, and writes what the viewer showed after each step.
 */
const DRIVER = `<!doctype html><html><body><pre id="log"></pre>
<iframe id="v" src="viewer.html" style="width:1200px;height:900px"></iframe>
<script>
var log = [];
var f = document.getElementById('v');
function shown(d) {
  var cards = d.querySelectorAll('details.row');
  var kinds = {};
  cards.forEach(function (c) { kinds[c.className] = (kinds[c.className] || 0) + 1; });
  return [d.body.getAttribute('data-matching'), cards.length, JSON.stringify(kinds), f.contentWindow.location.hash].join('|');
}
function when(test, then) { var t = setInterval(function () { if (test()) { clearInterval(t); then(); } }, 25); }
f.onload = function () {
  var d = f.contentDocument, w = f.contentWindow;
  when(function () { return d.body.getAttribute('data-ready') === 'yes'; }, function () {
    log.push('loaded|' + shown(d));
    var out = d.getElementById('f-out');
    out.value = 'kept-target';
    out.dispatchEvent(new w.Event('change'));
    log.push('outcome|' + shown(d));
    var q = d.getElementById('f-q');
    q.value = 'iteration 2';
    q.dispatchEvent(new w.Event('input'));
    setTimeout(function () {
      log.push('search|' + shown(d));
      d.querySelector('#pager button[data-page="2"]').click();
      log.push('page2|' + shown(d) + '|' + d.getElementById('status').textContent);
      d.getElementById('f-reset').click();
      log.push('reset|' + shown(d));
      document.getElementById('log').textContent = log.join('\\n');
      document.body.setAttribute('data-done', 'yes');
    }, 600);
  });
};
</script></body></html>`;

test('the filter controls, search box, pager and reset change what is shown', () => {
  const driver = path.join(out, 'driver.html');
  fs.writeFileSync(driver, DRIVER);
  const r = runHeadless(
    browser,
    [
      '--allow-file-access-from-files',
      '--virtual-time-budget=60000',
      '--dump-dom',
      pathToFileURL(driver).href,
    ],
    150_000,
  );
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('data-done="yes"');
  const log = /<pre id="log">([^<]*)<\/pre>/
    .exec(r.stdout)![1]!
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .split('\n');
  const step = (name: string) => log.find((l) => l.startsWith(`${name}|`))!.split('|');
  expect(step('loaded').slice(1, 3)).toEqual([String(rows.length), '50']);

  const keptTarget = rows.filter((r) => r.d === 'kept-target');
  const outcome = step('outcome');
  expect(outcome[1]).toBe(String(keptTarget.length));
  expect(JSON.parse(outcome[3]!)).toEqual({ 'row kept-target': 50 });
  expect(outcome[4]).toBe('#out=kept-target');

  // Search terms must all occur (any order) in the row's id, texts, actions, use case or skills.
  const terms = ['iteration', '2'];
  const searched = keptTarget.filter((r) => {
    const hay = [r.id, r.q, r.as, r.at, r.ac.join(' '), r.uc, r.sk.join(' ')].join('\n').toLowerCase();
    return terms.every((t) => hay.includes(t));
  });
  const search = step('search');
  expect(search[1]).toBe(String(searched.length));
  expect(searched.length).toBeLessThan(keptTarget.length);
  expect(search[4]).toBe('#q=iteration%202&out=kept-target');

  const page2 = step('page2');
  expect(page2[4]).toBe('#q=iteration%202&out=kept-target&page=2');
  expect(page2[5]).toContain(`showing 51–${Math.min(100, searched.length)} of`);

  const reset = step('reset');
  expect(reset.slice(1, 3)).toEqual([String(rows.length), '50']);
  expect(reset[4]).toBe('');
});
