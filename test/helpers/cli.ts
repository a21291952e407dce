import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../src/temporal/devServer';
import { tmpDir } from './env';

/** The CLI as a user runs it: `node bin/codeclm.js`. */
export const codeclmBin = path.join(__dirname, '..', '..', 'bin', 'codeclm.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `codeclm ARGS` as its own process with this process's environment plus `env`, in `cwd` (a
 * fresh temp dir unless given), and resolves with its exit code and output when it exits.
 */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [codeclmBin, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? tmpDir('codeclm-cli-'),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The embedded defaults as a new user meets them, for `runCli`'s env: no TEMPORAL_ADDRESS and no
 * OpenAI settings, so commands start their own dev server (state in `cwd`/.codeclm) and the offline
 * simulator, each on a free port; a detached run's dev server lingers `lingerSeconds`.
 */
export async function embeddedEnv(cwd: string, lingerSeconds: number): Promise<NodeJS.ProcessEnv> {
  return {
    TEMPORAL_ADDRESS: '',
    OPENAI_API_KEY: '',
    OPENAI_BASE_URL: '',
    CODECLM_HOME: path.join(cwd, '.codeclm'),
    CODECLM_EMBEDDED_PORT: String(await freePort()),
    CODECLM_SIM_PORT: String(await freePort()),
    CODECLM_DETACH_LINGER_SECONDS: String(lingerSeconds),
  };
}
