import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../temporal/devServer';
import { ClusterSetupError, provisionServerBinaries, type ServerBinaries } from './binaries';
import { startPostgres, type Postgres } from './postgres';
import {
  ensureNamespace,
  serverConfigYaml,
  setupSchema,
  startServerProcess,
  type ServerPorts,
  type ServerProcess,
} from './server';

/**
 * A real Temporal cluster on this machine, without Docker (issue 13): PostgreSQL from the
 * distribution, the Temporal server built from its Go module, schema by temporal-sql-tool, the
 * compose recipe's dynamic config. Steps, each reported and timed:
 *
 *   binaries   find the cached temporal-server/temporal-sql-tool (or build them with go, once)
 *   postgres   initdb + postgres on 127.0.0.1:<private port>, data under <dir>/pgdata
 *   schema     temporal-sql-tool create-database / setup-schema / update-schema, both databases
 *   server     temporal-server start (frontend, history, matching, worker in one process)
 *   namespace  register the namespace and wait until it is served
 *
 * A failing step throws a ClusterSetupError saying which step, with the tool's own words; what was
 * started before it is stopped again.
 */
export interface ClusterOptions {
  /** State directory (PostgreSQL data, server config, logs). Default: a new temp dir. */
  dir?: string;
  /** Frontend gRPC port. Default: a free one. */
  port?: number;
  namespace?: string;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** false: never build the server (fail when it is not cached). */
  allowBuild?: boolean;
}

export type ClusterStep = 'binaries' | 'postgres' | 'schema' | 'server' | 'namespace';

export interface Cluster {
  address: string;
  namespace: string;
  dir: string;
  binaries: ServerBinaries;
  postgres: Postgres;
  /** The running server process (replaced by restartServer). */
  server: ServerProcess;
  /** Milliseconds per step of the start-up. */
  timings: Record<ClusterStep, number>;
  /** SIGKILL (or another signal) to the server process; resolves when it has exited. */
  killServer(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same config and database; resolves when it answers. Returns ms. */
  restartServer(): Promise<number>;
  /** Server, then PostgreSQL. */
  stop(): Promise<void>;
}

const CONFIG_ENV = 'codeclm';

/**
 * A free port below 32768. The cluster_membership table keeps each service's port as a PostgreSQL
 * smallint: ports from the kernel's ephemeral range (32768 and up, what `listen(0)` gives) make the
 * server die at start-up ("value ... is out of range for type smallint").
 */
const taken = new Set<number>();
async function servicePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new ClusterSetupError('no free port between 20000 and 32000 on 127.0.0.1');
}

async function step<T>(
  name: ClusterStep,
  timings: Partial<Record<ClusterStep, number>>,
  log: (line: string) => void,
  fn: () => Promise<T> | T,
): Promise<T> {
  const started = Date.now();
  log(`codeclm: cluster: ${name} ...`);
  try {
    const result = await fn();
    timings[name] = Date.now() - started;
    log(`codeclm: cluster: ${name} ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return result;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`codeclm: cluster: ${name} FAILED: ${message}`);
    throw new ClusterSetupError(`cluster step "${name}" failed: ${message}`);
  }
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = opts.env ?? process.env;
  const namespace = opts.namespace ?? 'default';
  const dir = path.resolve(opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-cluster-')));
  fs.mkdirSync(dir, { recursive: true });
  const timings: Partial<Record<ClusterStep, number>> = {};
  let postgres: Postgres | undefined;
  let server: ServerProcess | undefined;
  try {
    const binaries = await step('binaries', timings, log, () =>
      provisionServerBinaries({ env, log, allowBuild: opts.allowBuild }),
    );
    // A random password per cluster, kept (mode 0600) beside its data so that `up` on the same
    // directory starts the same database again.
    const passwordFile = path.join(dir, '.pgpassword');
    const reuse = fs.existsSync(path.join(dir, 'pgdata', 'PG_VERSION'));
    if (reuse && !fs.existsSync(passwordFile))
      throw new ClusterSetupError(
        `${dir}/pgdata exists but ${passwordFile} does not: not a cluster directory of codeclm`,
      );
    const password = reuse
      ? fs.readFileSync(passwordFile, 'utf8').trim()
      : crypto.randomBytes(18).toString('base64url');
    if (!reuse) fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (reuse) log(`codeclm: cluster: starting the existing database in ${dir}/pgdata again`);
    postgres = await step('postgres', timings, log, async () =>
      startPostgres({
        dataDir: path.join(dir, 'pgdata'),
        port: await freePort(),
        password,
        reuse,
        logFile: path.join(dir, 'postgres.log'),
        env,
        log,
      }),
    );
    const pg = postgres;
    await step('schema', timings, log, () => setupSchema(binaries, pg, log));

    const ports: ServerPorts = {
      frontend: opts.port ?? (await servicePort()),
      frontendHttp: await servicePort(),
      frontendMembership: await servicePort(),
      history: await servicePort(),
      historyMembership: await servicePort(),
      matching: await servicePort(),
      matchingMembership: await servicePort(),
      worker: await servicePort(),
      workerMembership: await servicePort(),
      metrics: await servicePort(),
    };
    const configDir = path.join(dir, 'config');
    fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(configDir, `${CONFIG_ENV}.yaml`), serverConfigYaml({ pg, ports }), {
      mode: 0o600,
    });
    const address = `127.0.0.1:${ports.frontend}`;
    const serverOpts = {
      binary: binaries.server,
      configDir,
      env: CONFIG_ENV,
      address,
      logFile: path.join(dir, 'temporal-server.log'),
    };
    server = await step('server', timings, log, () => startServerProcess(serverOpts));
    await step('namespace', timings, log, () => ensureNamespace(address, namespace));
    log(`codeclm: cluster on ${address} (namespace ${namespace}; state in ${dir})`);

    const cluster: Cluster = {
      address,
      namespace,
      dir,
      binaries,
      postgres: pg,
      server,
      timings: timings as Record<ClusterStep, number>,
      async killServer(signal: NodeJS.Signals = 'SIGKILL') {
        cluster.server.process.kill(signal);
        await cluster.server.exited;
      },
      async restartServer() {
        const started = Date.now();
        await cluster.server.stop();
        cluster.server = await startServerProcess(serverOpts);
        server = cluster.server;
        await ensureNamespace(address, namespace);
        return Date.now() - started;
      },
      async stop() {
        await cluster.server.stop();
        await pg.stop();
      },
    };
    return cluster;
  } catch (err) {
    await server?.stop();
    await postgres?.stop();
    throw err;
  }
}
