import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { provisionServerBinaries, serverCacheDir } from './binaries';
import { startCluster } from './cluster';
import { provisionMinio } from '../objectstore/minio';

/**
 * The native cluster recipe (temporal-docker/native/cluster runs this):
 *
 *   cluster provision [server|minio]       build temporal-server + temporal-sql-tool and/or MinIO
 *                                          into the cache (both without an argument)
 *   cluster up [--dir DIR] [--port 7233]   PostgreSQL + schema + the four server services +
 *              [--namespace NS]            namespace + MinIO, in the foreground until Ctrl-C (then
 *              [--bucket B] [--s3-port P]  all stop); MinIO's client settings go to DIR/s3.env
 *              [--no-s3]                   (mode 0600: it holds the credentials)
 *
 * Exit 1 with the failing step's error; exit 2 on bad arguments.
 */
const USAGE =
  'usage: cluster provision [server|minio] | cluster up [--dir DIR] [--port PORT] [--namespace NS] [--bucket B] [--s3-port P] [--no-s3]';

function portOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!(Number.isInteger(port) && port > 0 && port < 65536))
    throw new Error(`--${name} must be a port number (got "${value}")`);
  return port;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        dir: { type: 'string' },
        port: { type: 'string' },
        namespace: { type: 'string' },
        bucket: { type: 'string' },
        's3-port': { type: 'string' },
        'no-s3': { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command] = parsed.positionals;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (command === 'provision') {
    // `provision` builds both; `provision server` / `provision minio` one of them (CI times each).
    const what = parsed.positionals[1];
    if (what !== undefined && what !== 'server' && what !== 'minio') {
      process.stderr.write(`provision takes "server", "minio" or nothing (got "${what}")\n${USAGE}\n`);
      return 2;
    }
    if (what !== 'minio') {
      const started = Date.now();
      const bin = provisionServerBinaries({ log });
      log(`codeclm: ${serverCacheDir()} ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      process.stdout.write(`${bin.server}\n${bin.sqlTool}\n${bin.schemaDir}\n`);
    }
    if (what !== 'server') {
      const started = Date.now();
      const minio = provisionMinio({ log });
      log(`codeclm: MinIO ${minio.path} (${minio.from}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      process.stdout.write(`${minio.path}\n`);
    }
    return 0;
  }
  if (command === 'up') {
    let port: number | undefined;
    let s3Port: number | undefined;
    try {
      port = portOption('port', parsed.values.port);
      s3Port = portOption('s3-port', parsed.values['s3-port']);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    const started = Date.now();
    const cluster = await startCluster({
      dir: parsed.values.dir,
      port,
      namespace: parsed.values.namespace,
      s3: !parsed.values['no-s3'],
      bucket: parsed.values.bucket,
      s3Port,
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
    if (cluster.minio) {
      // The credentials go to a file only the owner reads, never to the terminal.
      const envFile = path.join(cluster.dir, 's3.env');
      const lines = Object.entries(cluster.minio.clientEnv()).map(([k, v]) => `export ${k}=${v}`);
      fs.writeFileSync(envFile, `${lines.join('\n')}\n`, { mode: 0o600 });
      log(
        `codeclm: object store: . ${envFile} (endpoint and credentials), then --out s3://${cluster.minio.bucket}/<prefix>`,
      );
    }
    process.stdout.write(`${cluster.address}\n`);
    let stopping = false;
    await new Promise<void>((resolve) => {
      const stop = () => {
        stopping = true;
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A service that dies on its own ends the recipe too, saying so.
      void cluster.anyExit().then((e) => {
        if (!stopping)
          log(
            `codeclm: temporal-server (${e.service}) exited (${e.signal ?? `code ${e.code}`}); ` +
              `see ${cluster.services[e.service].logFile}`,
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
