import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';

/**
 * The Temporal SDK logs every worker state change at INFO, which would drown a CLI's progress
 * output. The CLI installs the runtime once at WARN (CODECLM_LOG_LEVEL overrides) before any worker.
 */
let installed = false;

export function installCliRuntime(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  const level = (env.CODECLM_LOG_LEVEL?.toUpperCase() ?? 'WARN') as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level),
    // Commands decide themselves what a signal means (see onShutdownSignal); the SDK's default
    // would swallow Ctrl-C in commands that have no worker to stop.
    shutdownSignals: [],
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: level }) } },
  });
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
