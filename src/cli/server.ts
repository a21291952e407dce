import fs from 'node:fs';
import path from 'node:path';
import { EXIT_FAILURE, EXIT_OK, UsageError, localPathOption, portOption, type CommandSpec } from './command';
import { sharedOptions, type JsonOption } from './options';
import { PortInUseError, startDevServer, type DevServer, type DevServerExit } from '../temporal/devServer';

export const DEFAULT_DB_FILE = path.join('.codeclm', 'temporal.db');

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

function describeExit(e: DevServerExit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

interface ServerOptions extends JsonOption {
  db?: string;
  port: number;
  uiPort?: number;
  namespace: string;
  headless?: boolean;
}

export const serverCommand: CommandSpec<ServerOptions> = {
  name: 'server',
  summary: 'run the Temporal dev server in the foreground, its state kept in a SQLite file',
  options(cmd) {
    cmd
      .addOption(
        localPathOption(
          '--db <file>',
          `state file (default ${DEFAULT_DB_FILE}, relative to the current directory); ` +
            'workflows, schedules and history survive restarts on the same file',
          "the dev server's state is a SQLite file; a cluster keeps it in PostgreSQL",
        ),
      )
      .addOption(portOption('--port <n>', 'frontend gRPC port on 127.0.0.1').default(7233))
      .addOption(portOption('--ui-port <n>', 'Web UI port (default: --port + 1000, i.e. 8233)'))
      .option('--namespace <ns>', 'a namespace to create at start; "default" always exists', 'default')
      .option('--headless', 'no Web UI')
      .addOption(
        sharedOptions.json(
          'print {"address","uiUrl","db","namespace","pid"} on stdout once the server answers',
        ),
      );
  },
  help: [
    'Stops cleanly on Ctrl-C or SIGTERM (exit 0); exits 1 if the server dies or a port is taken.',
    'Point other commands at it with TEMPORAL_ADDRESS=127.0.0.1:<port>.',
  ],
  async run(options) {
    const { port, namespace } = options;
    const uiPort = options.uiPort ?? port + 1000;
    const headless = !!options.headless;
    if (!headless && uiPort === port) {
      throw new UsageError('codeclm server: --port and --ui-port must differ');
    }
    if (uiPort > 65535) {
      throw new UsageError(
        `codeclm server: the default Web UI port ${uiPort} (--port + 1000) is invalid; pass --ui-port`,
      );
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(namespace)) {
      throw new UsageError(`codeclm server: --namespace "${namespace}" is not a valid namespace name`);
    }
    const db = path.resolve(options.db ?? DEFAULT_DB_FILE);

    // Listen for signals from the start: a Ctrl-C while the server is still starting must also stop it.
    let signalled: NodeJS.Signals | undefined;
    let onStopRequest: (sig: NodeJS.Signals) => void = () => undefined;
    const stopRequested = new Promise<NodeJS.Signals>((resolve) => (onStopRequest = resolve));
    const handler = (sig: NodeJS.Signals) => {
      if (signalled) {
        // A second Ctrl-C: the user is out of patience. The server is SIGKILLed by stop()'s timer
        // otherwise; here we leave at once and let the 'exit' hook send SIGTERM.
        say(`codeclm server: ${sig} again, leaving without waiting`);
        process.exit(EXIT_FAILURE);
      }
      signalled = sig;
      onStopRequest(sig);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);

    try {
      say(`codeclm server: starting the Temporal dev server (state: ${db}) ...`);
      let server: DevServer;
      try {
        server = await startDevServer({
          dbFile: db,
          port,
          uiPort,
          headless,
          namespace,
          ownProcessGroup: true,
          log: () => undefined,
        });
      } catch (err) {
        // Same exit code (1) either way; the port case gets its own, plainer wording.
        if (err instanceof PortInUseError) throw new Error(`cannot start: ${err.message}`);
        throw err;
      }
      say(`codeclm server: Temporal dev server ready`);
      say(`  address:   ${server.address}   (export TEMPORAL_ADDRESS=${server.address})`);
      if (server.uiUrl) say(`  Web UI:    ${server.uiUrl}`);
      say(`  namespace: ${namespace}`);
      say(`  state:     ${db}`);
      say(`  log:       ${server.logFile}`);
      say('Press Ctrl-C to stop.');
      if (options.json) {
        const info = {
          address: server.address,
          uiUrl: server.uiUrl ?? null,
          db,
          namespace,
          pid: server.process.pid,
        };
        process.stdout.write(`${JSON.stringify(info)}\n`);
      }

      const outcome = await Promise.race([
        stopRequested.then((sig) => ({ kind: 'signal' as const, sig })),
        server.exited.then((e) => ({ kind: 'exit' as const, e })),
      ]);
      if (outcome.kind === 'exit') {
        say(
          `codeclm server: the Temporal dev server ${describeExit(outcome.e)} unexpectedly. Its log (${server.logFile}) says:`,
        );
        const tail = fs.readFileSync(server.logFile, 'utf8').trim().split('\n').slice(-10);
        for (const line of tail) say(`  ${line}`);
        return EXIT_FAILURE;
      }
      say(`codeclm server: ${outcome.sig} received, stopping the dev server ...`);
      await server.stop();
      const end = await server.exited;
      say(`codeclm server: stopped (${describeExit(end)}); state kept in ${db}`);
      return EXIT_OK;
    } finally {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    }
  },
};
