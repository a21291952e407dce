import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { provisionTemporalCli } from './provision';

/** The Temporal dev server (from the Temporal CLI), with its state in a SQLite file. */
export interface DevServerOptions {
  dbFile: string;
  port?: number;
  uiPort?: number;
  /** No Web UI (tests). */
  headless?: boolean;
  namespace?: string;
  /** Where the server's own log goes; default: a file beside the db. */
  logFile?: string;
  log?: (line: string) => void;
  startTimeoutMs?: number;
  extraArgs?: string[];
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
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

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binary = await provisionTemporalCli({ log });
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? port + 1000;
  fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    path.resolve(opts.dbFile),
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    opts.namespace ?? 'default',
    '--log-level',
    'warn',
    // Let large batches move: these dev-server defaults are tuned for a laptop demo.
    '--dynamic-config-value',
    'limit.maxIDLength=1000',
    ...(opts.headless ? ['--headless'] : ['--ui-port', String(uiPort)]),
    ...(opts.extraArgs ?? []),
  ];
  if (await portIsOpen(port)) throw new Error(`port ${port} is already in use; cannot start a Temporal dev server there`);
  const logFile = opts.logFile ?? `${path.resolve(opts.dbFile)}.log`;
  const out = fs.openSync(logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const address = `127.0.0.1:${port}`;
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  while (!(await temporalAnswers(address, 1000))) {
    if (exited !== undefined) {
      const tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
      throw new Error(`Temporal dev server exited with code ${exited} while starting:\n${tail}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Temporal dev server did not answer on ${address} within ${opts.startTimeoutMs ?? 60_000} ms (log: ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`codeclm: Temporal dev server on ${address}${opts.headless ? '' : `, Web UI http://127.0.0.1:${uiPort}`} (state: ${opts.dbFile})`);
  return {
    address,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${uiPort}`,
    process: child,
    async stop() {
      if (exited !== undefined) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
}
