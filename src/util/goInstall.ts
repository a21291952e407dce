import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** How a Go build reports: `what` it was doing, and the error class of its caller. */
export interface GoContext {
  env: NodeJS.ProcessEnv;
  /** "building MinIO": the start of every error message. */
  what: string;
  /** What else the user can do when there is no Go: " or set CODECLM_MINIO". */
  hint?: string;
  fail: (message: string) => Error;
}

/** `go <args>`; its stdout, trimmed. Throws with the last lines of its output when it fails. */
export function runGo(args: string[], c: GoContext): string {
  const out = spawnSync('go', args, {
    encoding: 'utf8',
    env: c.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.error)
    throw c.fail(
      `${c.what}: \`go ${args.join(' ')}\` could not run (${out.error.message}); install Go (https://go.dev/dl)${c.hint ?? ' and try again'}`,
    );
  if (out.status !== 0) {
    const tail = (out.stderr || out.stdout).trim().split('\n').slice(-5).join('\n  ');
    throw c.fail(`${c.what}: \`go ${args.join(' ')}\` exited ${out.status}:\n  ${tail}`);
  }
  return out.stdout.trim();
}

/**
 * `go install packages` (static: CGO off) into a private GOBIN below `cacheDir`, then `place(gobin)`
 * moves what it needs into the cache by rename, so a concurrent provisioner never sees a
 * half-written binary. The GOBIN is removed afterwards, whatever happened.
 */
export function goInstallIntoCache(
  packages: string[],
  cacheDir: string,
  c: GoContext & { log: (line: string) => void },
  place: (gobin: string) => void,
): void {
  fs.mkdirSync(cacheDir, { recursive: true });
  const gobin = fs.mkdtempSync(path.join(cacheDir, '.build-'));
  try {
    c.log(`codeclm:   $ GOBIN=${gobin} go install ${packages.join(' ')}   (minutes, once)`);
    const started = Date.now();
    runGo(['install', ...packages], { ...c, env: { ...c.env, GOBIN: gobin, CGO_ENABLED: '0' } });
    c.log(`codeclm:   built in ${Math.round((Date.now() - started) / 1000)} s`);
    place(gobin);
  } finally {
    fs.rmSync(gobin, { recursive: true, force: true });
  }
}
