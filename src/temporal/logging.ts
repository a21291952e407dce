import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import {
  DefaultLogger,
  Runtime,
  makeTelemetryFilterString,
  type LogEntry,
  type LogLevel,
} from '@temporalio/worker';

/**
 * The Temporal SDK logs every worker state change at INFO, which would drown a CLI's progress
 * output. The CLI installs the runtime once at WARN (CODECLM_LOG_LEVEL overrides) before any worker.
 *
 * Where the entries go can change after the runtime is installed (it can be installed only once per
 * process): stderr by default (`codeclm worker`, whose logs are its output), or a file once a
 * command runs an in-process worker beside its progress output (`run`, `eval`, `demo`): an LLM
 * activity that retries through a provider outage logs a warning with a stack trace per attempt,
 * which belongs in a log file, not between progress lines (the progress shows one retry line).
 */
let installed = false;
let sink: (line: string) => void = (line) => process.stderr.write(line);
let logFile: string | undefined;

export function formatLogEntry(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta =
    entry.meta && Object.keys(entry.meta).length
      ? ` ${inspect(entry.meta, { depth: 6, breakLength: Infinity, colors: false })}`
      : '';
  return `${time} [${entry.level}] ${entry.message}${meta}\n`;
}

export function installCliRuntime(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  const level = (env.CODECLM_LOG_LEVEL?.toUpperCase() ?? 'WARN') as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => sink(formatLogEntry(entry))),
    // Commands decide themselves what a signal means (see onShutdownSignal); the SDK's default
    // would swallow Ctrl-C in commands that have no worker to stop.
    shutdownSignals: [],
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: level }) } },
  });
}

/**
 * Sends this process's Temporal and worker logs to `<dir>/worker-<YYYY-MM-DD>.log` (appended) from
 * now on, and returns the file's path; the same path on later calls. Synchronous appends: a log line
 * is on disk before the process can exit.
 */
export function workerLogsToFile(dir: string, now = new Date()): string {
  if (logFile) return logFile;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `worker-${now.toISOString().slice(0, 10)}.log`);
  const fd = fs.openSync(file, 'a');
  sink = (line) => {
    try {
      fs.writeSync(fd, line);
    } catch {
      // A full disk must not fail the run: the line is lost, the work goes on.
    }
  };
  logFile = file;
  for (const line of pendingNotes.splice(0)) sink(line);
  return file;
}

/** Notes made before this process had a log file (a few at most; see noteInLog). */
const pendingNotes: string[] = [];

/**
 * A one-line note for this process's log file, never its terminal: written now if the process logs
 * to a file, else kept until it does (workerLogsToFile) and dropped if it never does. For notices a
 * user cannot act on from the command line (the AWS SDK's Node-version notice, src/store/s3client.ts).
 */
export function noteInLog(message: string, now = new Date()): void {
  const line = `${now.toISOString()} [INFO] ${message}\n`;
  if (logFile) sink(line);
  else if (pendingNotes.length < 16) pendingNotes.push(line);
}

/** The worker log file of this process, when logs go to one. */
export function workerLogFile(): string | undefined {
  return logFile;
}

/** Runs `fn` once on the first SIGINT or SIGTERM; returns a function that removes the handlers. */
export function onShutdownSignal(fn: (signal: NodeJS.Signals) => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    dispose();
    fn(signal);
  };
  const dispose = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return dispose;
}
