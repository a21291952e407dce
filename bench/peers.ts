import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `codeclm bench --peers`: the same request load through Curator, pinned, in a venv of its own
 * under the codeclm cache (CODECLM_CACHE_DIR, else $XDG_CACHE_HOME/codeclm, else ~/.cache/codeclm).
 * Only this file needs Python; the bench without --peers never touches it.
 */
export const CURATOR_VERSION = '0.1.31';
const CURATOR_REQUIREMENT = `bespokelabs-curator==${CURATOR_VERSION}`;
const DRIVER = path.join(__dirname, 'curator_driver.py');

export function peersCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const root =
    env.CODECLM_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'codeclm');
  return path.join(root, 'peers', `curator-${CURATOR_VERSION}`);
}

/** The venv's python, installing Curator into it on first use. Throws with pip's own words on failure. */
export function ensureCuratorVenv(log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): string {
  const dir = peersCacheDir(env);
  const python = path.join(dir, 'venv', 'bin', 'python');
  const marker = path.join(dir, 'installed.json');
  if (fs.existsSync(python) && fs.existsSync(marker)) return python;
  const system = env.CODECLM_PYTHON ?? 'python3';
  const probe = spawnSync(system, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error(
      `codeclm bench --peers: needs Python 3 to install ${CURATOR_REQUIREMENT} (tried "${system}"; set CODECLM_PYTHON to another interpreter): ${probe.error?.message ?? probe.stderr}`,
    );
  fs.mkdirSync(dir, { recursive: true });
  log(`bench: peers: installing ${CURATOR_REQUIREMENT} into ${path.join(dir, 'venv')} (first run only)`);
  const venv = spawnSync(system, ['-m', 'venv', path.join(dir, 'venv')], { encoding: 'utf8' });
  if (venv.status !== 0)
    throw new Error(
      `codeclm bench --peers: "${system} -m venv" failed:\n${tail(venv.stderr || venv.stdout)}`,
    );
  const pip = spawnSync(
    python,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', CURATOR_REQUIREMENT],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (pip.status !== 0)
    throw new Error(
      `codeclm bench --peers: pip install ${CURATOR_REQUIREMENT} failed (exit ${pip.status}):\n${tail(pip.stderr || pip.stdout)}`,
    );
  fs.writeFileSync(
    marker,
    JSON.stringify({ requirement: CURATOR_REQUIREMENT, at: new Date().toISOString() }),
  );
  return python;
}

function tail(text: string, lines = 20): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export interface CuratorRun {
  child: ChildProcess;
  /** Resolves with the driver's exit code and its last stderr lines. */
  exited: Promise<{ code: number | null; stderrTail: string; stdout: string }>;
  stop(): Promise<void>;
}

/** Starts the driver on `requestsFile` (JSONL request bodies) against `baseURL`. */
export function startCurator(opts: {
  python: string;
  requestsFile: string;
  baseURL: string;
  rpm: number;
  workDir: string;
}): CuratorRun {
  const env = {
    ...process.env,
    OPENAI_API_KEY: 'not-set',
    TELEMETRY_ENABLED: 'false',
    CURATOR_CACHE_DIR: path.join(opts.workDir, 'curator-cache'),
    LITELLM_LOCAL_MODEL_COST_MAP: 'True',
    // Curator shows a live console table; plain logs are enough here.
    TERM: 'dumb',
  };
  const child = spawn(
    opts.python,
    [
      DRIVER,
      '--requests',
      opts.requestsFile,
      '--base-url',
      opts.baseURL,
      '--rpm',
      String(opts.rpm),
      // The simulator has no token cap; so that only the rpm setting binds, Curator's token
      // limit is set far above anything this load uses (its default would otherwise apply).
      '--tpm',
      String(1_000_000_000),
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const exited = new Promise<{ code: number | null; stderrTail: string; stdout: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderrTail: tail(stderr), stdout })),
  );
  return {
    child,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
