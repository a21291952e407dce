import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { codeclmCacheRoot } from '../temporal/provision';
import { goInstallIntoCache, runGo } from '../util/goInstall';

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
  return path.join(codeclmCacheRoot(env), 'temporal-server', TEMPORAL_SERVER_VERSION);
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

function buildIntoCache(target: ServerBinaries, env: NodeJS.ProcessEnv, log: (line: string) => void): void {
  const dir = path.dirname(target.server);
  const packages = [`${MODULE}/cmd/server`, `${MODULE}/cmd/tools/sql`].map(
    (p) => `${p}@v${TEMPORAL_SERVER_VERSION}`,
  );
  const go = {
    env,
    log,
    what: 'building the Temporal server',
    fail: (m: string) => new ClusterSetupError(m),
  };
  goInstallIntoCache(packages, dir, go, (gobin) => {
    // The schema files ship in the module's source, which `go install` left in the module cache.
    const modCache = runGo(['env', 'GOMODCACHE'], { ...go, what: 'finding the Go module cache' });
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
  });
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
