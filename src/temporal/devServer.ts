import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { provisionTemporalCli } from './provision';
import { MAX_ID_LENGTH } from '../workflows/ids';
import { superviseUntilReady, type ProcessExit } from '../util/supervise';

/** The Temporal dev server (from the Temporal CLI), with its state in a SQLite file. */
export interface DevServerOptions {
  dbFile: string;
  port?: number;
  /** Default: port + 1000, as the Temporal CLI itself does (7233 -> 8233). */
  uiPort?: number;
  /** No Web UI (tests). */
  headless?: boolean;
  namespace?: string;
  /** Where the server's own log goes; default: a file beside the db. */
  logFile?: string;
  log?: (line: string) => void;
  startTimeoutMs?: number;
  extraArgs?: string[];
  /**
   * Start the server in its own process group, so a Ctrl-C in the terminal reaches only us and we
   * decide how the server stops (SIGTERM, then wait). For foreground use (`codeclm server`).
   */
  ownProcessGroup?: boolean;
}

export type DevServerExit = ProcessExit;

export interface DevServer {
  address: string;
  uiUrl?: string;
  dbFile: string;
  logFile: string;
  process: ChildProcess;
  /** Settles when the server process has ended, whoever ended it. */
  exited: Promise<DevServerExit>;
  /** SIGTERM, wait for the exit (SIGKILL after 10 s). Safe to call more than once. */
  stop(): Promise<void>;
}

/** A port we were asked to use is taken: the CLI reports this as a failure (exit 1), naming the port. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
  constructor(
    readonly port: number,
    what: string,
  ) {
    super(
      `port ${port} (${what}) is already in use on 127.0.0.1; ` +
        'is another Temporal server running? Stop it or choose another port.',
    );
  }
}

export async function portIsOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether we could listen on the port ourselves (catches listeners a connect probe misses, e.g. on 0.0.0.0 behind a filter). */
async function canListen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function ensurePortFree(port: number, what: string): Promise<void> {
  if ((await portIsOpen(port)) || !(await canListen(port))) throw new PortInUseError(port, what);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when a Temporal frontend answers at `address`. */
export async function temporalAnswers(address: string, timeoutMs = 3000): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

/**
 * The history service reads each shard's transfer queue (every workflow task and activity task
 * passes through it on its way to matching) at most 20 times a second by default. The dev server has
 * one shard, so every hop of a workflow waits up to 50 ms there twice: a no-op activity round trip
 * measured 96 ms with the default and 23 ms with this (bench/RESULTS.md). The extra reads cost
 * nothing when the queue is idle; under load the reads batch as before.
 * temporal-docker/dynamicconfig/codeclm.yaml sets the same for the cluster.
 */
export const LATENCY_TUNING = ['history.transferProcessorMaxPollRPS=1000'];

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binary = await provisionTemporalCli({ log });
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? port + 1000;
  const dbFile = path.resolve(opts.dbFile);
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    opts.namespace ?? 'default',
    '--log-level',
    'warn',
    // The cluster's id limit (PostgreSQL's VARCHAR(255)), so an id that works here works there.
    '--dynamic-config-value',
    `limit.maxIDLength=${MAX_ID_LENGTH}`,
    ...LATENCY_TUNING.flatMap((kv) => ['--dynamic-config-value', kv]),
    ...(opts.headless ? ['--headless'] : ['--ui-port', String(uiPort)]),
    ...(opts.extraArgs ?? []),
  ];
  // Checked up front: otherwise the server dies with a bind error buried in its log file.
  await ensurePortFree(port, 'Temporal gRPC');
  if (!opts.headless) await ensurePortFree(uiPort, 'Temporal Web UI');
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  const logFile = opts.logFile ?? `${dbFile}.log`;
  const out = fs.openSync(logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', out, out], detached: opts.ownProcessGroup ?? false });
  fs.closeSync(out);
  const address = `127.0.0.1:${port}`;
  const supervised = await superviseUntilReady(child, {
    name: 'Temporal dev server',
    logFile,
    ready: () => temporalAnswers(address, 1000),
    where: address,
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    pollMs: 200,
    // SIGTERM when this process goes away without stop(): the dev server then closes its state file.
    parentExitSignal: 'SIGTERM',
  });
  const uiUrl = opts.headless ? undefined : `http://127.0.0.1:${uiPort}`;
  log(
    `codeclm: Temporal dev server on ${address}${uiUrl ? `, Web UI ${uiUrl}` : ''} (state: ${opts.dbFile})`,
  );
  return {
    address,
    uiUrl,
    dbFile,
    logFile,
    process: child,
    exited: supervised.exited,
    stop: supervised.stop,
  };
}
