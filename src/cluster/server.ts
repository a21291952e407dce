import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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

export interface ServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

export interface ServerConfigOptions {
  pg: Postgres;
  ports: ServerPorts;
  dynamicConfigFile?: string;
  /** Fixed for the life of the database; 4 is the compose image's default. */
  numHistoryShards?: number;
}

/** The server's static config (all four services, PostgreSQL persistence and visibility). */
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
  const service = (name: string, grpc: number, membership: number, http?: number) =>
    [
      `  ${name}:`,
      `    rpc:`,
      `      grpcPort: ${grpc}`,
      `      membershipPort: ${membership}`,
      `      bindOnLocalHost: true`,
      ...(http ? [`      httpPort: ${http}`] : []),
    ].join('\n');
  const p = o.ports;
  return `# Written by codeclm (src/cluster/server.ts): one Temporal server process, all four services.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${o.numHistoryShards ?? 4}
  datastores:
    postgres-default:
${store('temporal', 20)}
    postgres-visibility:
${store('temporal_visibility', 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:${p.metrics}"
services:
${service('frontend', p.frontend, p.frontendMembership, p.frontendHttp)}
${service('history', p.history, p.historyMembership)}
${service('matching', p.matching, p.matchingMembership)}
${service('worker', p.worker, p.workerMembership)}
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
      rpcAddress: "127.0.0.1:${p.frontend}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${JSON.stringify(o.dynamicConfigFile ?? DYNAMIC_CONFIG_FILE)}
  pollInterval: 10s
`;
}

export type ServerExit = ProcessExit;

export interface ServerProcess {
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

/**
 * Starts `temporal-server start` on a config directory holding `<env>.yaml` and waits until the
 * frontend answers. The config (with the database password) is readable by its owner only.
 */
export async function startServerProcess(o: {
  binary: string;
  configDir: string;
  env: string;
  address: string;
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
    ],
    { stdio: ['ignore', out, out], cwd: path.dirname(o.configDir) },
  );
  fs.closeSync(out);
  const timeoutMs = o.startTimeoutMs ?? 120_000;
  const supervised = await superviseUntilReady(child, {
    name: 'temporal-server',
    logFile: o.logFile,
    ready: () => temporalAnswers(o.address, 1000),
    where: o.address,
    startTimeoutMs: timeoutMs,
    stopGraceMs: 20_000,
    tail: logTail,
    error: (message) => new ClusterSetupError(message),
  });
  return {
    address: o.address,
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
