import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The Temporal server and temporal-sql-tool for the native cluster (issue 13), built once from the
 * server's Go module into the cache, beside the schema files the tool applies:
 *
 *   ~/.cache/codeclm/temporal-server/<version>/temporal-server
 *                                              temporal-sql-tool
 *                                              schema/postgresql/v12/{temporal,visibility}/versioned/...
 *
 * (CODECLM_CACHE_DIR or XDG_CACHE_HOME move it, as for the Temporal CLI.) The version is the one
 * inside the pinned Temporal CLI's dev server, so tests on the dev server and on the cluster run
 * the same server code. The build needs `go` and the Go module proxy once (about 5 minutes on 2
 * cores); after that nothing is downloaded.
 */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const MODULE = 'go.temporal.io/server';

export interface ServerBinaries {
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 of the server module: `temporal/` and `visibility/`, each with `versioned/`. */
  schemaDir: string;
}

export class ClusterSetupError extends Error {
  override name = 'ClusterSetupError';
}

export function serverCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.CODECLM_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'codeclm');
  return path.join(base, 'temporal-server', TEMPORAL_SERVER_VERSION);
}

export function cachedServerBinaries(env: NodeJS.ProcessEnv = process.env): ServerBinaries {
  const dir = serverCacheDir(env);
  return {
    server: path.join(dir, 'temporal-server'),
    sqlTool: path.join(dir, 'temporal-sql-tool'),
    schemaDir: path.join(dir, 'schema', 'postgresql', 'v12'),
  };
}

/** undefined when the cached set is complete and the server says it is the pinned version. */
export function whyNotUsable(b: ServerBinaries): string | undefined {
  for (const file of [b.server, b.sqlTool]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      return `${file} is missing or not executable`;
    }
  }
  for (const db of ['temporal', 'visibility']) {
    const versioned = path.join(b.schemaDir, db, 'versioned');
    if (!fs.existsSync(versioned)) return `${versioned} is missing`;
  }
  const out = spawnSync(b.server, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (out.status !== 0 || !out.stdout.includes(TEMPORAL_SERVER_VERSION)) {
    const said = (out.stderr || out.stdout || String(out.error ?? `exit ${out.status}`)).trim();
    return `${b.server} --version did not say ${TEMPORAL_SERVER_VERSION} (${said.slice(0, 200)})`;
  }
  return undefined;
}

export interface ProvisionServerOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** false: only a cached set may be used (no Go build). */
  allowBuild?: boolean;
}

/** The cached binaries, building them with `go install` first when they are not there. */
export function provisionServerBinaries(opts: ProvisionServerOptions = {}): ServerBinaries {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cached = cachedServerBinaries(env);
  const problem = whyNotUsable(cached);
  if (!problem) return cached;
  if (opts.allowBuild === false)
    throw new ClusterSetupError(
      `the Temporal server ${TEMPORAL_SERVER_VERSION} is not in the cache (${problem}); ` +
        'build it once with `temporal-docker/native/cluster provision` (needs go)',
    );
  log(`codeclm: Temporal server ${TEMPORAL_SERVER_VERSION} not cached (${problem}); building it with go`);
  buildIntoCache(cached, env, log);
  const after = whyNotUsable(cached);
  if (after) throw new ClusterSetupError(`built the Temporal server, but ${after}`);
  log(`codeclm: Temporal server ready in ${path.dirname(cached.server)}`);
  return cached;
}

function go(args: string[], env: NodeJS.ProcessEnv, what: string): string {
  const out = spawnSync('go', args, {
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.error)
    throw new ClusterSetupError(
      `${what}: \`go ${args.join(' ')}\` could not run (${out.error.message}); install Go (https://go.dev/dl) and try again`,
    );
  if (out.status !== 0) {
    const tail = (out.stderr || out.stdout).trim().split('\n').slice(-5).join('\n  ');
    throw new ClusterSetupError(`${what}: \`go ${args.join(' ')}\` exited ${out.status}:\n  ${tail}`);
  }
  return out.stdout.trim();
}

function buildIntoCache(target: ServerBinaries, env: NodeJS.ProcessEnv, log: (line: string) => void): void {
  const dir = path.dirname(target.server);
  fs.mkdirSync(dir, { recursive: true });
  // A private GOBIN, then renames: a concurrent provisioner never sees a half-written binary.
  const gobin = fs.mkdtempSync(path.join(dir, '.build-'));
  try {
    const packages = [`${MODULE}/cmd/server`, `${MODULE}/cmd/tools/sql`].map(
      (p) => `${p}@v${TEMPORAL_SERVER_VERSION}`,
    );
    log(`codeclm:   $ GOBIN=${gobin} go install ${packages.join(' ')}   (minutes, once)`);
    const started = Date.now();
    // CGO off: a static binary that does not depend on this machine's C libraries.
    go(['install', ...packages], { ...env, GOBIN: gobin, CGO_ENABLED: '0' }, 'building the Temporal server');
    log(`codeclm:   built in ${Math.round((Date.now() - started) / 1000)} s`);

    // The schema files ship in the module's source, which `go install` left in the module cache.
    const modCache = go(['env', 'GOMODCACHE'], env, 'finding the Go module cache');
    const source = path.join(
      modCache,
      `${MODULE}@v${TEMPORAL_SERVER_VERSION}`,
      'schema',
      'postgresql',
      'v12',
    );
    if (!fs.existsSync(source))
      throw new ClusterSetupError(`the server module's schema files are not at ${source}`);
    const schemaTmp = path.join(gobin, 'schema');
    fs.cpSync(source, schemaTmp, { recursive: true });
    makeWritable(schemaTmp);
    fs.rmSync(path.join(dir, 'schema'), { recursive: true, force: true });
    fs.mkdirSync(path.dirname(target.schemaDir), { recursive: true });
    fs.renameSync(schemaTmp, target.schemaDir);

    for (const [built, file] of [
      ['server', target.server],
      ['sql', target.sqlTool],
    ] as const) {
      fs.chmodSync(path.join(gobin, built), 0o755);
      fs.renameSync(path.join(gobin, built), file);
    }
  } finally {
    fs.rmSync(gobin, { recursive: true, force: true });
  }
}

/** Module cache files are read-only; their copies in our cache must be replaceable later. */
function makeWritable(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(file);
    else fs.chmodSync(file, 0o644);
  }
}
