import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporalAnswers } from '../temporal/devServer';
import { ClusterSetupError, type ServerBinaries } from './binaries';
import type { Postgres } from './postgres';
import { superviseUntilReady, type ProcessExit } from '../util/supervise';

/** The dynamic config the compose recipe mounts; the native cluster reads the same file. */
export const DYNAMIC_CONFIG_FILE = path.resolve(
  __dirname,
  '..',
  '..',
  'temporal-docker',
  'dynamicconfig',
  'codeclm.yaml',
);

/** The two databases temporal-sql-tool creates, and the schema directory each gets. */
const DATABASES = [
  { name: 'temporal', schema: 'temporal' },
  { name: 'temporal_visibility', schema: 'visibility' },
] as const;

function sqlEnv(pg: Postgres, database: string): NodeJS.ProcessEnv {
  // The password goes by environment (the tool's SQL_PASSWORD), not on a command line others can read.
  return {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: pg.host,
    SQL_PORT: String(pg.port),
    SQL_USER: pg.user,
    SQL_PASSWORD: pg.password,
    SQL_DATABASE: database,
  };
}

/**
 * Creates both databases and brings their schema to the version this server needs: `setup-schema
 * -v 0.0` creates the version bookkeeping, `update-schema -d .../versioned` applies every versioned
 * step (the same commands the compose recipe's temporal-schema service runs). Idempotent.
 */
export function setupSchema(bin: ServerBinaries, pg: Postgres, log: (line: string) => void): void {
  for (const db of DATABASES) {
    const steps: [string, string[]][] = [
      ['create-database', ['create-database']],
      ['setup-schema', ['setup-schema', '-v', '0.0']],
      ['update-schema', ['update-schema', '-d', path.join(bin.schemaDir, db.schema, 'versioned')]],
    ];
    let existed = false;
    for (const [name, args] of steps) {
      // An existing database (a restarted cluster) has its version table: only missing versions apply.
      if (name === 'setup-schema' && existed) continue;
      log(`codeclm:   $ temporal-sql-tool --db ${db.name} ${args.join(' ')}`);
      const out = spawnSync(bin.sqlTool, args, {
        encoding: 'utf8',
        env: sqlEnv(pg, db.name),
        timeout: 300_000,
      });
      const said = `${out.stderr}\n${out.stdout}`.trim();
      if (name === 'create-database' && out.status !== 0 && /already exists/i.test(said)) {
        existed = true;
        continue;
      }
      if (out.error || out.status !== 0)
        throw new ClusterSetupError(
          `temporal-sql-tool ${name} on database ${db.name} failed (exit ${out.status}):\n  ` +
            (said || String(out.error)).split('\n').slice(-5).join('\n  '),
        );
    }
  }
}

/**
 * The server's four services, each its own `temporal-server start --service <name>` process (as a
 * production cluster runs them): history owns the shards and workflow state, matching the task
 * queues, frontend the public gRPC API, worker the server's own system workflows. Started in this
 * order: frontend and worker find history and matching through the membership ring in PostgreSQL.
 */
export const SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** One service's ports: gRPC, ringpop membership, Prometheus metrics, pprof (and frontend's HTTP API). */
export interface ServicePorts {
  grpc: number;
  membership: number;
  metrics: number;
  pprof: number;
  http?: number;
}

export type ServerPorts = Record<ServiceName, ServicePorts>;

export interface ServerConfigOptions {
  pg: Postgres;
  ports: ServerPorts;
  /** The service this config file is for: its metrics and pprof listeners are its own. */
  service: ServiceName;
  dynamicConfigFile?: string;
  /** Fixed for the life of the database; 4 is the compose image's default. */
  numHistoryShards?: number;
}

/**
 * The static config of one service process. Every process knows every service's gRPC and
 * membership ports (they find each other through the cluster_membership table); the global
 * metrics and pprof listeners are per process, so each service's file names its own.
 */
export function serverConfigYaml(o: ServerConfigOptions): string {
  const store = (database: string, maxConns: number) =>
    [
      `      sql:`,
      `        pluginName: postgres12`,
      `        databaseName: ${database}`,
      `        connectAddr: "${o.pg.host}:${o.pg.port}"`,
      `        connectProtocol: tcp`,
      `        user: ${JSON.stringify(o.pg.user)}`,
      `        password: ${JSON.stringify(o.pg.password)}`,
      `        maxConns: ${maxConns}`,
      `        maxIdleConns: ${maxConns}`,
      `        maxConnLifetime: 1h`,
    ].join('\n');
  const service = (name: ServiceName) => {
    const p = o.ports[name];
    return [
      `  ${name}:`,
      `    rpc:`,
      `      grpcPort: ${p.grpc}`,
      `      membershipPort: ${p.membership}`,
      `      bindOnLocalHost: true`,
      ...(p.http ? [`      httpPort: ${p.http}`] : []),
    ].join('\n');
  };
  const own = o.ports[o.service];
  return `# Written by codeclm (src/cluster/server.ts): the ${o.service} service's process.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${o.numHistoryShards ?? 4}
  datastores:
    postgres-default:
${store('temporal', o.service === 'history' ? 20 : 10)}
    postgres-visibility:
${store('temporal_visibility', o.service === 'history' ? 10 : 5)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  pprof:
    port: ${own.pprof}
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:${own.metrics}"
services:
${SERVICES.map(service).join('\n')}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${o.ports.frontend.grpc}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${JSON.stringify(o.dynamicConfigFile ?? DYNAMIC_CONFIG_FILE)}
  pollInterval: 10s
`;
}

export type ServerExit = ProcessExit;

export interface ServerProcess {
  service: ServiceName;
  /** Where its gRPC listens (the frontend's is the cluster's address). */
  address: string;
  process: ChildProcess;
  exited: Promise<ServerExit>;
  logFile: string;
  /** SIGTERM, wait (SIGKILL after 20 s). Safe to call more than once. */
  stop(): Promise<void>;
}

/** The server's last distinct log messages, without their stack traces (its log is JSON lines). */
function logTail(file: string, lines = 4): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '(no log)';
  }
  const messages: string[] = [];
  for (const line of text.trim().split('\n')) {
    let message = line;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      message = `${entry.level}: ${entry.msg}${entry.error ? `: ${entry.error}` : ''}`;
    } catch {
      // not JSON: the line as it is
    }
    if (messages[messages.length - 1] !== message) messages.push(message);
  }
  return messages.slice(-lines).join('\n');
}

/** The names history and matching give their gRPC health status (handler.go of each). */
const HEALTH_NAMES: Partial<Record<ServiceName, string>> = {
  history: 'temporal.api.workflowservice.v1.HistoryService',
  matching: 'temporal.api.workflowservice.v1.MatchingService',
};

/**
 * grpc.health.v1.Health/Check by hand (no proto files): the request is field 1 (the service name),
 * the answer field 1 (a status; 1 is SERVING). History says SERVING once it owns its shards.
 */
export function grpcServing(address: string, name: string, timeoutMs = 1000): Promise<boolean> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const bytes = Buffer.from(name, 'utf8');
  return new Promise<boolean>((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      () => Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]),
      (answer: Buffer) => answer,
      null,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, answer) => {
        client.close();
        resolve(!err && !!answer && answer.length >= 2 && answer[0] === 0x08 && answer[1] === 1);
      },
    );
  });
}

/** The worker service serves no gRPC API of its own: its metrics listener answering is the sign. */
async function metricsAnswer(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function serviceReady(service: ServiceName, ports: ServicePorts): () => Promise<boolean> {
  const address = `127.0.0.1:${ports.grpc}`;
  const health = HEALTH_NAMES[service];
  if (service === 'frontend') return () => temporalAnswers(address, 1000);
  if (health) return () => grpcServing(address, health);
  return () => metricsAnswer(ports.metrics);
}

/**
 * Starts `temporal-server start --service <service>` on the config `<configDir>/<env>.yaml` and
 * waits until the service serves. The config (with the database password) is readable by its owner
 * only.
 */
export async function startServiceProcess(o: {
  binary: string;
  configDir: string;
  service: ServiceName;
  ports: ServicePorts;
  /** The config file's name without .yaml (temporal-server's --env). */
  env: string;
  logFile: string;
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  const out = fs.openSync(o.logFile, 'a');
  const child = spawn(
    o.binary,
    [
      '--root',
      path.dirname(o.configDir),
      '--config',
      path.basename(o.configDir),
      '--env',
      o.env,
      '--allow-no-auth',
      'start',
      '--service',
      o.service,
    ],
    { stdio: ['ignore', out, out], cwd: path.dirname(o.configDir) },
  );
  fs.closeSync(out);
  const address = `127.0.0.1:${o.ports.grpc}`;
  const supervised = await superviseUntilReady(child, {
    name: `temporal-server (${o.service})`,
    logFile: o.logFile,
    ready: serviceReady(o.service, o.ports),
    where: address,
    startTimeoutMs: o.startTimeoutMs ?? 120_000,
    stopGraceMs: 20_000,
    tail: logTail,
    error: (message) => new ClusterSetupError(message),
  });
  return {
    service: o.service,
    address,
    process: child,
    exited: supervised.exited,
    logFile: o.logFile,
    stop: supervised.stop,
  };
}

/**
 * Registers the namespace (unless it exists) and waits until the frontend serves it: a new
 * namespace reaches the services' namespace caches a few seconds after it is written.
 */
export async function ensureNamespace(
  address: string,
  namespace: string,
  retentionDays = 7,
  timeoutMs = 60_000,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const service = connection.workflowService;
    try {
      await service.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
      });
    } catch (err) {
      if (!/already exists|AlreadyExists/i.test(String(err))) throw err;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await service.listWorkflowExecutions({ namespace, pageSize: 1 });
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new ClusterSetupError(
            `namespace ${namespace} was registered but is not served after ${timeoutMs / 1000} s: ${String(err)}`,
          );
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
}
