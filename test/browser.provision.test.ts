import fs from 'node:fs';
import path from 'node:path';
import {
  BrowserProvisionError,
  defaultBrowserInstallers,
  provisionBrowser,
  type BrowserInstaller,
} from '../src/browser/provision';
import { tmpDir } from './helpers/env';

/**
 * Browser provisioning's order of routes, with fake browsers (shell scripts answering --version) and
 * fake installers: nothing here installs or downloads.
 */
const CHROMIUM = '#!/bin/sh\necho "Chromium 140.0.7339.80 built on Debian GNU/Linux 12 (bookworm)"\n';
const NOT_A_BROWSER = '#!/bin/sh\necho "firefox 1.0"\n';

function fake(dir: string, name: string, script = CHROMIUM): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}

function failing(name: string, calls: string[]): BrowserInstaller {
  return {
    name,
    async install() {
      calls.push(name);
      throw new Error(`${name} failed: no network\nstack...`);
    },
  };
}

const empty = () => ({ PATH: tmpDir('codeclm-nopath-'), CODECLM_CACHE_DIR: tmpDir('codeclm-cache-') });

test('an explicit CODECLM_CHROMIUM wins over PATH', async () => {
  const root = tmpDir('codeclm-browser-');
  const explicit = fake(path.join(root, 'explicit'), 'my-chrome');
  fake(path.join(root, 'bin'), 'chromium');
  const found = await provisionBrowser({
    env: { ...empty(), PATH: path.join(root, 'bin'), CODECLM_CHROMIUM: explicit },
    commonPaths: [],
    installers: [],
  });
  expect(found).toBe(explicit);
});

test('an unusable explicit browser is reported, and the next route (PATH) is taken', async () => {
  const root = tmpDir('codeclm-browser-');
  const logs: string[] = [];
  const onPath = fake(path.join(root, 'bin'), 'google-chrome');
  const found = await provisionBrowser({
    env: { ...empty(), PATH: path.join(root, 'bin'), CHROME_PATH: fake(root, 'ff', NOT_A_BROWSER) },
    commonPaths: [],
    installers: [],
    log: (l) => logs.push(l),
  });
  expect(found).toBe(onPath);
  expect(logs.join('\n')).toMatch(/CHROME_PATH is set but unusable: .*did not answer like Chromium/);
});

test('a common install path is found when nothing is on PATH, before any install', async () => {
  const root = tmpDir('codeclm-browser-');
  const common = fake(path.join(root, 'opt'), 'chrome');
  const calls: string[] = [];
  const found = await provisionBrowser({
    env: empty(),
    commonPaths: [path.join(root, 'missing', 'chromium'), common],
    installers: [failing('apt', calls)],
  });
  expect(found).toBe(common);
  expect(calls).toEqual([]);
});

test('installers run in order until one gives a working browser', async () => {
  const root = tmpDir('codeclm-browser-');
  const calls: string[] = [];
  const found = await provisionBrowser({
    env: empty(),
    commonPaths: [],
    log: () => undefined,
    installers: [
      failing('apt', calls),
      {
        name: 'download',
        async install() {
          calls.push('download');
          return fake(path.join(root, 'dl'), 'chrome-headless-shell');
        },
      },
    ],
  });
  expect(calls).toEqual(['apt', 'download']);
  expect(found).toBe(path.join(root, 'dl', 'chrome-headless-shell'));
});

test('when every route fails, the error lists each one and says what to do', async () => {
  const calls: string[] = [];
  const err = await provisionBrowser({
    env: empty(),
    commonPaths: ['/nowhere/chromium'],
    log: () => undefined,
    installers: [failing('apt-get install chromium', calls), failing('npx @puppeteer/browsers', calls)],
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BrowserProvisionError);
  const message = (err as Error).message;
  expect(message).toContain('CODECLM_CHROMIUM, CHROME_PATH, CHROMIUM_PATH: not set');
  expect(message).toContain('PATH: none of chromium, chromium-browser');
  expect(message).toContain('common paths: none present (1 looked at)');
  expect(message).toContain('apt-get install chromium: apt-get install chromium failed: no network');
  expect(message).toContain('npx @puppeteer/browsers: npx @puppeteer/browsers failed: no network');
  expect(message).not.toContain('stack...');
  expect(message).toContain('set CODECLM_CHROMIUM');
  expect(calls).toHaveLength(2);
});

test('without allowInstall nothing is installed', async () => {
  const calls: string[] = [];
  await expect(
    provisionBrowser({
      env: empty(),
      commonPaths: [],
      allowInstall: false,
      installers: [failing('apt', calls)],
    }),
  ).rejects.toThrow(BrowserProvisionError);
  expect(calls).toEqual([]);
});

test('the real routes are apt-get (root or passwordless sudo) and then a download via npm', () => {
  expect(defaultBrowserInstallers().map((i) => i.name)).toEqual([
    'apt-get install chromium',
    'npx @puppeteer/browsers install chrome-headless-shell@stable (download from Chrome for Testing)',
  ]);
});

test('this machine has a working browser by the default routes', async () => {
  const found = await provisionBrowser({ log: () => undefined });
  expect(fs.existsSync(found)).toBe(true);
});
