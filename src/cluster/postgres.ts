import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ClusterSetupError } from './binaries';
import { logTail, superviseUntilReady } from '../util/supervise';

/**
 * A private PostgreSQL for the native cluster: the distribution's own server binaries (Debian:
 * `apt-get install postgresql`, binaries in /usr/lib/postgresql/<major>/bin), a fresh data directory,
 * listening on 127.0.0.1 on a port of our choosing only, password (scram) authentication for the one
 * superuser `temporal` that Temporal and temporal-sql-tool use. Nothing of the system's own
 * PostgreSQL service is touched.
 *
 * initdb and postgres refuse to run as root: as root, both run as an unprivileged OS user
 * (CODECLM_POSTGRES_OS_USER, default `postgres`, which the Debian package creates).
 */
export interface PostgresOptions {
  /** The data directory (created; must not hold another cluster unless `reuse`). */
  dataDir: string;
  port: number;
  password: string;
  user?: string;
  logFile?: string;
  /** Keep an existing data directory (a restart) instead of refusing it. */
  reuse?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface Postgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  logFile: string;
  binDir: string;
  process: ChildProcess;
  /** Fast shutdown (SIGINT), SIGKILL after 15 s. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Where initdb, postgres and pg_isready are: POSTGRES_BIN_DIR, pg_config, or the newest Debian one. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  const has = (dir: string) =>
    fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'));
  if (env.POSTGRES_BIN_DIR) {
    if (has(env.POSTGRES_BIN_DIR)) return env.POSTGRES_BIN_DIR;
    tried.push(`POSTGRES_BIN_DIR=${env.POSTGRES_BIN_DIR} has no initdb/postgres`);
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0 && has(pgConfig.stdout.trim())) return pgConfig.stdout.trim();
  tried.push('pg_config: not found or its --bindir has no initdb');
  const debian = '/usr/lib/postgresql';
  const majors = fs.existsSync(debian)
    ? fs
        .readdirSync(debian)
        .filter((v) => /^\d+$/.test(v) && has(path.join(debian, v, 'bin')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length) return path.join(debian, majors[0]!, 'bin');
  tried.push(`${debian}/<major>/bin: none with initdb`);
  throw new ClusterSetupError(
    `PostgreSQL server binaries not found (${tried.join('; ')}). Install them (Debian/Ubuntu: ` +
      '`apt-get install postgresql`) or set POSTGRES_BIN_DIR to the directory holding initdb and postgres',
  );
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** As root: the unprivileged user PostgreSQL runs as. Otherwise undefined (run as ourselves). */
function postgresOsUser(env: NodeJS.ProcessEnv): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = env.CODECLM_POSTGRES_OS_USER ?? 'postgres';
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0)
    throw new ClusterSetupError(
      `running as root, and initdb refuses root: PostgreSQL must run as another OS user, but user "${name}" ` +
        'does not exist. Create it (useradd --system postgres) or set CODECLM_POSTGRES_OS_USER to an existing user',
    );
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function chownTree(dir: string, user: OsUser): void {
  fs.chownSync(dir, user.uid, user.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(file, user);
    else fs.chownSync(file, user.uid, user.gid);
  }
}

export async function startPostgres(opts: PostgresOptions): Promise<Postgres> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binDir = findPostgresBin(env);
  const osUser = postgresOsUser(env);
  const user = opts.user ?? 'temporal';
  const dataDir = path.resolve(opts.dataDir);
  const logFile = opts.logFile ?? `${dataDir}.log`;
  const asUser = osUser ? { uid: osUser.uid, gid: osUser.gid } : {};
  // The postgres user must be able to reach the data directory through its parents.
  const parent = path.dirname(dataDir);
  fs.mkdirSync(parent, { recursive: true });
  if (osUser) fs.chmodSync(parent, 0o755);

  const initialised = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  if (initialised && !opts.reuse)
    throw new ClusterSetupError(`${dataDir} already holds a PostgreSQL cluster; use a new directory`);
  if (!initialised) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // The password reaches initdb through a file only it reads, never the command line.
    const pwFile = path.join(dataDir, '..', `.pw-${process.pid}`);
    fs.writeFileSync(pwFile, `${opts.password}\n`, { mode: 0o600 });
    if (osUser) {
      chownTree(dataDir, osUser);
      fs.chownSync(pwFile, osUser.uid, osUser.gid);
    }
    log(
      `codeclm:   $ initdb -D ${dataDir} -U ${user} --auth=scram-sha-256${osUser ? ` (as ${osUser.name})` : ''}`,
    );
    const init = spawnSync(
      path.join(binDir, 'initdb'),
      ['-D', dataDir, '-U', user, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-locale'],
      { encoding: 'utf8', ...asUser, cwd: parent, timeout: 120_000 },
    );
    fs.rmSync(pwFile, { force: true });
    if (init.error || init.status !== 0) {
      const said = (init.stderr || init.stdout || String(init.error))
        .trim()
        .split('\n')
        .slice(-5)
        .join('\n  ');
      throw new ClusterSetupError(`initdb failed (exit ${init.status}):\n  ${said}`);
    }
  }

  const out = fs.openSync(logFile, 'a');
  if (osUser) fs.fchownSync(out, osUser.uid, osUser.gid);
  // Only TCP on 127.0.0.1; the Unix socket goes in the data directory, away from the system's.
  const child = spawn(
    path.join(binDir, 'postgres'),
    [
      '-D',
      dataDir,
      '-p',
      String(opts.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dataDir}`,
      // Temporal opens up to maxConns per store and service; leave room for 2 servers.
      '-c',
      'max_connections=200',
    ],
    { stdio: ['ignore', out, out], ...asUser, cwd: parent },
  );
  fs.closeSync(out);
  const supervised = await superviseUntilReady(child, {
    name: 'postgres',
    logFile,
    ready: async () =>
      spawnSync(path.join(binDir, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(opts.port), '-q'], {
        timeout: 5000,
      }).status === 0,
    where: `127.0.0.1:${opts.port}`,
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    pollMs: 200,
    // SIGINT is PostgreSQL's fast shutdown: it rolls back open transactions and exits cleanly.
    stopSignal: 'SIGINT',
    stopGraceMs: 15_000,
    tail: (file) => logTail(file, 8),
    error: (message) => new ClusterSetupError(message),
  });
  return {
    host: '127.0.0.1',
    port: opts.port,
    user,
    password: opts.password,
    dataDir,
    logFile,
    binDir,
    process: child,
    stop: supervised.stop,
  };
}
