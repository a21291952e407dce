import { parseArgs } from 'node:util';
import { provisionServerBinaries, serverCacheDir } from './binaries';
import { startCluster } from './cluster';

/**
 * The native cluster recipe (temporal-docker/native/cluster runs this):
 *
 *   cluster provision                      build temporal-server + temporal-sql-tool into the cache
 *   cluster up [--dir DIR] [--port 7233]   PostgreSQL + schema + server + namespace, in the
 *              [--namespace NS]            foreground until Ctrl-C (then both stop)
 *
 * Exit 1 with the failing step's error; exit 2 on bad arguments.
 */
const USAGE = 'usage: cluster provision | cluster up [--dir DIR] [--port PORT] [--namespace NS]';

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dir: { type: 'string' }, port: { type: 'string' }, namespace: { type: 'string' } },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command] = parsed.positionals;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (command === 'provision') {
    const started = Date.now();
    const bin = provisionServerBinaries({ log });
    log(`codeclm: ${serverCacheDir()} ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    process.stdout.write(`${bin.server}\n${bin.sqlTool}\n${bin.schemaDir}\n`);
    return 0;
  }
  if (command === 'up') {
    const port = parsed.values.port === undefined ? undefined : Number(parsed.values.port);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
      process.stderr.write(`--port must be a port number (got "${parsed.values.port}")\n${USAGE}\n`);
      return 2;
    }
    const started = Date.now();
    const cluster = await startCluster({
      dir: parsed.values.dir,
      port,
      namespace: parsed.values.namespace,
      log,
    });
    log(
      `codeclm: cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `(${Object.entries(cluster.timings)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
          .join(', ')})`,
    );
    log(
      `codeclm: export TEMPORAL_ADDRESS=${cluster.address} TEMPORAL_NAMESPACE=${cluster.namespace}; Ctrl-C stops it`,
    );
    process.stdout.write(`${cluster.address}\n`);
    let stopping = false;
    await new Promise<void>((resolve) => {
      const stop = () => {
        stopping = true;
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A server that dies on its own ends the recipe too, saying so.
      void cluster.server.exited.then((e) => {
        if (!stopping)
          log(
            `codeclm: temporal-server exited (${e.signal ?? `code ${e.code}`}); see ${cluster.server.logFile}`,
          );
        resolve();
      });
    });
    log('codeclm: stopping the cluster');
    await cluster.stop();
    return 0;
  }
  process.stderr.write(`${command ? `unknown command "${command}"\n` : ''}${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`codeclm: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
