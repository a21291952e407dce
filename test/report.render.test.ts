import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeRunOutputs } from '../src/report/write';
import { fixtureReport } from './report.fixture';
import { tmpDir } from './helpers/env';
import { pngSize, runHeadless, testBrowser } from './helpers/browser';

/**
 * report.html in a real browser: headless Chromium (or Chrome), found or installed by
 * src/browser/provision.ts (test/helpers/browser.ts), no network. The page must load, hold its
 * charts as rendered <svg> elements, and a screenshot must come out as a PNG.
 */
let chromium: string;
beforeAll(async () => {
  chromium = await testBrowser();
}, 20 * 60_000);

describe('report.html in headless Chromium', () => {
  const out = tmpDir('codeclm-render-');
  let files: Awaited<ReturnType<typeof writeRunOutputs>>;
  let url: string;
  beforeAll(async () => {
    files = await writeRunOutputs(out, fixtureReport());
    url = pathToFileURL(files.reportHtml).href;
  });

  test('the page loads and its DOM holds every chart as an <svg> with drawn shapes', () => {
    const r = runHeadless(chromium, ['--dump-dom', url]);
    expect(r.status).toBe(0);
    const dom = r.stdout;
    expect(dom).toContain('<title>codeclm run fixture-run</title>');
    const svgs = dom.match(/<svg[\s>]/g) ?? [];
    expect(svgs.length).toBe(files.charts.length);
    expect(svgs.length).toBeGreaterThanOrEqual(6);
    expect((dom.match(/<rect /g) ?? []).length).toBeGreaterThan(30);
    expect(dom).toContain('Jensen-Shannon');
  });

  test('a screenshot is written as a PNG without errors', () => {
    const png = path.join(out, 'report.png');
    const r = runHeadless(chromium, [`--screenshot=${png}`, '--window-size=1100,2400', url]);
    expect(r.status).toBe(0);
    expect(fs.existsSync(png)).toBe(true);
    const bytes = fs.readFileSync(png);
    expect(pngSize(bytes)?.width).toBe(1100);
    expect(bytes.length).toBeGreaterThan(20_000); // a drawn page, not a blank one
  });
});
