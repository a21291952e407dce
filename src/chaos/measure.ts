import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort, startDevServer } from '../temporal/devServer';
import { startSimulator } from '../sim/server';
import type { codeclmRun } from '../workflows/pipeline';
import { chaosSeeds, startRunDetached } from './harness';
import { historyStats, printResultAndExit, rssKb, runFigures, simRoles } from './runStats';

/**
 * The scale measurement of README "Reliability": one `codeclm worker` process, its own dev server
 * and the zero-latency simulator (no faults); a run of `seeds` seeds and `size` target pairs.
 * Reports wall time, peak RSS of the worker and the server (VmHWM), the longest history of any
 * workflow of the run (events) and the server's state-file size.
 *
 *   node -r tsx/cjs src/chaos/measure.ts SEEDS SIZE [CONCURRENCY]
 */
const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'codeclm.js');

export async function measure(seeds: number, size: number, concurrency = 64) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-measure-'));
  const sim = await startSimulator({ seed: 1 });
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      roles: simRoles(sim.url, 'CODECLM_MEASURE_KEY'),
      method: { dedupeInstructions: true },
      limits: { size, concurrency },
    }),
  );
  fs.writeFileSync(path.join(dir, 'seeds.jsonl'), chaosSeeds(seeds));
  const dbFile = path.join(dir, 'temporal.db');
  const server = await startDevServer({
    dbFile,
    port: await freePort(),
    headless: true,
    log: () => undefined,
  });
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    CODECLM_MEASURE_KEY: 'k',
    CODECLM_CACHE: 'off',
    CODECLM_LOG_LEVEL: 'ERROR',
  };
  const worker = spawn(
    process.execPath,
    [BIN, 'worker', '--concurrency', String(concurrency), '--config', configFile],
    {
      env,
      stdio: [
        'ignore',
        fs.openSync(path.join(dir, 'worker.log'), 'a'),
        fs.openSync(path.join(dir, 'worker.log'), 'a'),
      ],
    },
  );
  const runId = `measure-${seeds}-${size}`;
  const started = Date.now();
  await startRunDetached({
    seedsFile: path.join(dir, 'seeds.jsonl'),
    outDir: path.join(dir, 'out'),
    configFile,
    runId,
    env,
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const handle = client.workflow.getHandle<typeof codeclmRun>(runId);
  let peakWorker = 0;
  let peakServer = 0;
  const sampler = setInterval(() => {
    peakWorker = Math.max(peakWorker, rssKb(worker.pid, 'VmRSS'));
    peakServer = Math.max(peakServer, rssKb(server.process.pid, 'VmRSS'));
  }, 1000);
  const result = await handle.result();
  const wall = (Date.now() - started) / 1000;
  clearInterval(sampler);
  peakWorker = Math.max(peakWorker, rssKb(worker.pid, 'VmHWM'));
  peakServer = Math.max(peakServer, rssKb(server.process.pid, 'VmHWM'));
  const history = await historyStats(client, runId);
  const dbBytes = ['', '-wal', '-shm'].reduce(
    (n, ext) => n + (fs.existsSync(dbFile + ext) ? fs.statSync(dbFile + ext).size : 0),
    0,
  );
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  await client.connection.close();
  await server.stop();
  await sim.close();
  return {
    seeds,
    size,
    wall_s: Math.round(wall),
    ...runFigures(result, history),
    peak_rss_worker_mb: Math.round(peakWorker / 1024),
    peak_rss_server_mb: Math.round(peakServer / 1024),
    state_file_mb: Math.round(dbBytes / 1024 / 1024),
    dir,
  };
}

if (require.main === module) {
  const [seeds, size, concurrency] = process.argv.slice(2).map(Number);
  printResultAndExit(measure(seeds ?? 20000, size ?? 2000, concurrency || 64));
}
