import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../temporal/devServer';
import { ClusterSetupError, provisionServerBinaries, type ServerBinaries } from './binaries';
import { startPostgres, type Postgres } from './postgres';
import { startMinio, type Minio } from '../objectstore/minio';
import {
  ensureNamespace,
  serverConfigYaml,
  setupSchema,
  SERVICES,
  startServiceProcess,
  type ServerPorts,
  type ServerProcess,
  type ServiceName,
} from './server';

/**
 * A real Temporal cluster on this machine, without Docker (issue 13): PostgreSQL from the
 * distribution, the Temporal server built from its Go module, schema by temporal-sql-tool, the
 * compose recipe's dynamic config. Steps, each reported and timed:
 *
 *   binaries   find the cached temporal-server/temporal-sql-tool (or build them with go, once)
 *   postgres   initdb + postgres on 127.0.0.1:<private port>, data under <dir>/pgdata
 *   schema     temporal-sql-tool create-database / setup-schema / update-schema, both databases
 *   server     temporal-server start --service <name>: history, matching, frontend and worker, each
 *              its own process with its own gRPC, membership, metrics and pprof ports
 *   namespace  register the namespace and wait until it is served
 *   s3         MinIO on 127.0.0.1:<free port>, data under <dir>/minio, a bucket for run data
 *              (workers share no filesystem: `--out s3://<bucket>/<prefix>`); skipped with s3: false
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
  /** false: never build the server or MinIO (fail when they are not cached). */
  allowBuild?: boolean;
  /** false: no MinIO. Default true. */
  s3?: boolean;
  /** The bucket MinIO gets. Default `codeclm`. */
  bucket?: string;
  /** MinIO's S3 port. Default: a free one. */
  s3Port?: number;
}

export type ClusterStep = 'binaries' | 'postgres' | 'schema' | 'server' | 'namespace' | 's3';

export interface Cluster {
  address: string;
  namespace: string;
  dir: string;
  binaries: ServerBinaries;
  postgres: Postgres;
  /** The object store for run data (absent with s3: false). */
  minio?: Minio;
  /** The running service processes (one replaced by restartService). */
  services: Record<ServiceName, ServerProcess>;
  ports: ServerPorts;
  /** Milliseconds per step of the start-up. */
  timings: Record<ClusterStep, number>;
  /** SIGKILL (or another signal) to one service's process; resolves when it has exited. */
  killService(service: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts one service again on the same config and database; resolves when it serves. Returns ms. */
  restartService(service: ServiceName): Promise<number>;
  /** Resolves with the first service process that exits (by itself or killed). */
  anyExit(): Promise<{ service: ServiceName; code: number | null; signal: NodeJS.Signals | null }>;
  /** The services (frontend first), PostgreSQL, MinIO. */
  stop(): Promise<void>;
}

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
  const services: Partial<Record<ServiceName, ServerProcess>> = {};
  let minio: Minio | undefined;
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

    const ports = {} as ServerPorts;
    for (const service of SERVICES)
      ports[service] = {
        grpc: service === 'frontend' && opts.port ? opts.port : await servicePort(),
        membership: await servicePort(),
        metrics: await servicePort(),
        pprof: await servicePort(),
        ...(service === 'frontend' ? { http: await servicePort() } : {}),
      };
    const configDir = path.join(dir, 'config');
    fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });
    for (const service of SERVICES)
      fs.writeFileSync(path.join(configDir, `${service}.yaml`), serverConfigYaml({ pg, ports, service }), {
        mode: 0o600,
      });
    const address = `127.0.0.1:${ports.frontend.grpc}`;
    const startService = (service: ServiceName) =>
      startServiceProcess({
        binary: binaries.server,
        configDir,
        service,
        ports: ports[service],
        env: service,
        logFile: path.join(dir, `temporal-${service}.log`),
      });
    await step('server', timings, log, async () => {
      // History alone first: on a new database the first process writes the cluster metadata, and
      // two doing it at once fail ("failed to initialize current cluster metadata"). Then matching
      // and frontend, then the worker service (a client of frontend). One failing stops the rest.
      for (const batch of [['history'], ['matching', 'frontend'], ['worker']] as ServiceName[][]) {
        const started = await Promise.allSettled(batch.map(startService));
        for (const r of started) if (r.status === 'fulfilled') services[r.value.service] = r.value;
        const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    });
    await step('namespace', timings, log, () => ensureNamespace(address, namespace));
    if (opts.s3 !== false)
      minio = await step('s3', timings, log, () =>
        startMinio({
          dir: path.join(dir, 'minio'),
          port: opts.s3Port,
          bucket: opts.bucket,
          env,
          log,
          allowBuild: opts.allowBuild,
        }),
      );
    log(`codeclm: cluster on ${address} (namespace ${namespace}; state in ${dir})`);

    const running = services as Record<ServiceName, ServerProcess>;
    const cluster: Cluster = {
      address,
      namespace,
      dir,
      binaries,
      postgres: pg,
      minio,
      services: running,
      ports,
      timings: timings as Record<ClusterStep, number>,
      async killService(service, signal: NodeJS.Signals = 'SIGKILL') {
        running[service].process.kill(signal);
        await running[service].exited;
      },
      async restartService(service) {
        const started = Date.now();
        await running[service].stop();
        running[service] = await startService(service);
        return Date.now() - started;
      },
      anyExit() {
        return Promise.race(
          SERVICES.map((service) => running[service].exited.then((e) => ({ service, ...e }))),
        );
      },
      async stop() {
        for (const service of ['frontend', 'worker', 'matching', 'history'] as const)
          await running[service].stop();
        await pg.stop();
        await minio?.stop();
      },
    };
    return cluster;
  } catch (err) {
    for (const service of SERVICES) await services[service]?.stop();
    await postgres?.stop();
    await minio?.stop();
    throw err;
  }
}
