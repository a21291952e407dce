import { spawnSync } from 'node:child_process';
import { provisionBrowser } from '../../src/browser/provision';
import { tmpDir } from './env';

/**
 * The headless browser for tests that render pages (report.html, viewer.html): found or installed
 * once per test file by src/browser/provision.ts, which reports each route it tried when none works.
 */
let found: Promise<string> | undefined;
export function testBrowser(): Promise<string> {
  found ??= provisionBrowser({ log: (line) => process.stderr.write(`${line}\n`) });
  return found;
}

export interface BrowserRun {
  stdout: string;
  stderr: string;
  status: number | null;
}

/** Runs the browser headless with a fresh profile and nothing fetched from the network. */
export function runHeadless(browser: string, args: string[], timeoutMs = 90_000): BrowserRun {
  const r = spawnSync(
    browser,
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
      `--user-data-dir=${tmpDir('codeclm-chromium-')}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 },
  );
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** The PNG's width and height from its IHDR chunk, or undefined when the bytes are not a PNG. */
export function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(signature)) return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
