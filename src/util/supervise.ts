import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Supervising a server process codeclm starts (the Temporal dev server, the cluster's
 * temporal-server and PostgreSQL, llama-cpp-python's server): wait until it serves, fail with its
 * log's last lines when it dies or never answers, stop it gracefully, and never leave it behind
 * when this Node process exits without stopping it.
 */

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SupervisedProcess {
  /** Resolves when the process has ended (an exit, or a spawn error that may emit no exit). */
  exited: Promise<ProcessExit>;
  /** The stop signal, then SIGKILL after the grace period; resolves once it has ended. */
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  /** What the process is, for messages ("Temporal dev server", "postgres"). */
  name: string;
  logFile: string;
  /** True once the process serves (one probe; called again until it is true). */
  ready(): Promise<boolean>;
  /** Where it should answer, for the timeout message ("127.0.0.1:7233"). */
  where: string;
  startTimeoutMs: number;
  pollMs?: number;
  /** Signal for a graceful stop (default SIGTERM; PostgreSQL's fast shutdown is SIGINT). */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
  /** Sent if this Node process exits while the child runs (default SIGKILL: only sync code runs then). */
  parentExitSignal?: NodeJS.Signals;
  /** The log's last lines for an error message (default: its last 5 lines as they are). */
  tail?: (logFile: string) => string;
  /** Builds the error thrown when the start fails, so callers keep their own error class. */
  error?: (message: string) => Error;
}

export function logTail(file: string, lines = 5): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function describeExit(e: ProcessExit): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

/** Watches `child` from its spawn and resolves once `ready()` says it serves. */
export async function superviseUntilReady(
  child: ChildProcess,
  o: SuperviseOptions,
): Promise<SupervisedProcess> {
  let ended: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = { code, signal };
      resolve(ended);
    });
    child.once('error', () => {
      ended ??= { code: null, signal: null };
      resolve(ended);
    });
  });
  const killOnExit = () => {
    if (!ended) child.kill(o.parentExitSignal ?? 'SIGKILL');
  };
  process.once('exit', killOnExit);
  const tail = () => (o.tail ?? logTail)(o.logFile);
  const fail = (message: string) => {
    process.removeListener('exit', killOnExit);
    return (o.error ?? ((m: string) => new Error(m)))(message);
  };

  const deadline = Date.now() + o.startTimeoutMs;
  while (!(await o.ready())) {
    if (ended) {
      throw fail(`${o.name} exited (${describeExit(ended)}) while starting (log ${o.logFile}):\n${tail()}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw fail(
        `${o.name} did not answer on ${o.where} within ${o.startTimeoutMs / 1000} s (log ${o.logFile}):\n${tail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
  return {
    exited,
    async stop() {
      if (!ended) {
        child.kill(o.stopSignal ?? 'SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), o.stopGraceMs ?? 10_000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
    },
  };
}
