import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeRunOutputs } from '../src/report/write';
import { fixtureReport } from './report.fixture';
import { tmpDir } from './helpers/env';

/**
 * report.html in a real browser: Debian's chromium, headless, no network. The page must load, hold
 * its charts as rendered <svg> elements, and a screenshot must come out as a PNG.
 * CI installs the browser with `apt-get install -y chromium`; without it this test fails and says so.
 */
const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
  Boolean,
) as string[];
const chromium = CANDIDATES.find((p) => fs.existsSync(p));

function runChromium(
  args: string[],
  profile: string,
): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(
    chromium!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe('report.html in headless Chromium', () => {
  const out = tmpDir('codeclm-render-');
  const files = writeRunOutputs(out, fixtureReport());
  const url = pathToFileURL(files.reportHtml).href;

  test('chromium is installed', () => {
    if (!chromium) {
      throw new Error(
        `Chromium not found (looked at ${CANDIDATES.join(', ')}). This test renders report.html in Debian's chromium: ` +
          'install it with `apt-get update && apt-get install -y chromium`, or set CHROMIUM_PATH.',
      );
    }
  });

  test('the page loads and its DOM holds every chart as an <svg> with drawn shapes', () => {
    if (!chromium) throw new Error('chromium is missing: see the test above');
    const r = runChromium(['--dump-dom', url], tmpDir('codeclm-chromium-'));
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
    if (!chromium) throw new Error('chromium is missing: see the test above');
    const png = path.join(out, 'report.png');
    const r = runChromium(
      [`--screenshot=${png}`, '--window-size=1100,2400', url],
      tmpDir('codeclm-chromium-'),
    );
    expect(r.status).toBe(0);
    expect(fs.existsSync(png)).toBe(true);
    const bytes = fs.readFileSync(png);
    expect(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(
      true,
    );
    expect(bytes.readUInt32BE(16)).toBe(1100); // IHDR width
    expect(bytes.length).toBeGreaterThan(20_000); // a drawn page, not a blank one
  });
});
