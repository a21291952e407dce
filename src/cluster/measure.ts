import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { startSimulator } from '../sim/server';
import type { codeclmRun } from '../workflows/pipeline';
import { chaosSeeds, startRunDetached } from '../chaos/harness';
import { historyStats, printResultAndExit, rssKb, runFigures, simRoles } from '../chaos/runStats';
import { startCluster } from './cluster';
import { SERVICES } from './server';

/**
 * The scale measurement on the cluster (README "Running on a cluster", issue 13): the native
 * cluster (PostgreSQL, the four server services, MinIO), the zero-latency simulator, W `codeclm
 * worker` processes each in its own directory, seeds and --out on S3. Reports wall time, the RSS of
 * every process sampled over the run (peak, and the samples at each tenth of the run, to show
 * whether it grows with the run), the longest history, and database and bucket sizes.
 *
 *   node -r tsx/cjs src/cluster/measure.ts SEEDS SIZE [WORKERS] [CONCURRENCY]
 *
 * State goes to a new directory under CODECLM_MEASURE_DIR (default /var/tmp: PostgreSQL runs as
 * its own OS user, which cannot enter /root) and is kept for inspection.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'codeclm.js');

/**
 * A process and its children (PostgreSQL has one backend per connection). An upper bound: pages of
 * shared_buffers a backend touched count in each backend's RSS.
 */
function treeRssKb(pid: number | undefined): number {
  if (!pid) return 0;
  let total = rssKb(pid);
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout;
  for (const child of children.split('\n').filter(Boolean)) total += treeRssKb(Number(child));
  return total;
}

function duBytes(dir: string): number {
  const out = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(out.stdout.split('\t')[0] ?? 0);
}

export async function measureCluster(seeds: number, size: number, workerCount = 2, concurrency = 64) {
  const base = process.env.CODECLM_MEASURE_DIR ?? '/var/tmp';
  const dir = fs.mkdtempSync(path.join(base, 'codeclm-cluster-measure-'));
  fs.chmodSync(dir, 0o755); // PostgreSQL's OS user must reach its data directory below it
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const cluster = await startCluster({ dir: path.join(dir, 'cluster'), log: () => undefined });
  const minio = cluster.minio!;
  const sim = await startSimulator({ seed: 1 });
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: {
      accessKeyId: minio.clientEnv().AWS_ACCESS_KEY_ID!,
      secretAccessKey: minio.clientEnv().AWS_SECRET_ACCESS_KEY!,
    },
  });
  const prefix = `measure-${seeds}-${size}`;
  await s3.send(
    new PutObjectCommand({ Bucket: minio.bucket, Key: `${prefix}/seeds.jsonl`, Body: chaosSeeds(seeds) }),
  );
  const config = JSON.stringify({
    roles: simRoles(sim.url, 'CODECLM_MEASURE_KEY'),
    method: { dedupeInstructions: true },
    limits: { size, concurrency },
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...minio.clientEnv(),
    TEMPORAL_ADDRESS: cluster.address,
    TEMPORAL_NAMESPACE: cluster.namespace,
    CODECLM_MEASURE_KEY: 'k',
    CODECLM_CACHE: 'off',
    CODECLM_LOG_LEVEL: 'ERROR',
  };
  const workers: ChildProcess[] = [];
  for (let i = 0; i < workerCount; i++) {
    const home = path.join(dir, `worker-${i}`);
    fs.mkdirSync(home, { recursive: true });
    fs.writeFileSync(path.join(home, 'config.json'), config);
    const out = fs.openSync(path.join(home, 'worker.log'), 'a');
    workers.push(
      spawn(
        process.execPath,
        [BIN, 'worker', '--concurrency', String(concurrency), '--config', 'config.json'],
        {
          cwd: home,
          env: { ...env, CODECLM_HOME: path.join(home, '.codeclm') },
          stdio: ['ignore', out, out],
        },
      ),
    );
    fs.closeSync(out);
  }
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, config);
  const runId = prefix;
  const outDir = `s3://${minio.bucket}/${prefix}/out`;
  const started = Date.now();
  await startRunDetached({
    seedsFile: `s3://${minio.bucket}/${prefix}/seeds.jsonl`,
    outDir,
    configFile,
    runId,
    env,
  });
  log(`measure: run ${runId} started on ${cluster.address}, state in ${dir}`);

  const pids = (): Record<string, number | undefined> => ({
    ...Object.fromEntries(workers.map((w, i) => [`worker-${i}`, w.pid])),
    ...Object.fromEntries(SERVICES.map((s) => [`temporal-${s}`, cluster.services[s].process.pid])),
    postgres: cluster.postgres.process.pid,
    minio: minio.process.pid,
  });
  const samples: { t: number; rssMb: Record<string, number> }[] = [];
  const sample = () => {
    const rssMb: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids()))
      rssMb[name] = Math.round((name === 'postgres' ? treeRssKb(pid) : rssKb(pid)) / 1024);
    samples.push({ t: Math.round((Date.now() - started) / 1000), rssMb });
  };
  const sampler = setInterval(sample, 5000);
  const client = new Client({ connection: await Connection.connect({ address: cluster.address }) });
  const handle = client.workflow.getHandle<typeof codeclmRun>(runId);
  const result = await handle.result();
  const wall = (Date.now() - started) / 1000;
  clearInterval(sampler);
  sample();

  const history = await historyStats(client, runId);
  let bucketBytes = 0;
  let objects = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/`, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      objects++;
      bucketBytes += o.Size ?? 0;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);

  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(0) : w.once('exit', r)))));
  await client.connection.close();
  s3.destroy();
  await cluster.stop();
  await sim.close();
  const pgdataBytes = duBytes(cluster.postgres.dataDir);
  const names = Object.keys(samples[0]?.rssMb ?? {});
  const peak = Object.fromEntries(names.map((n) => [n, Math.max(...samples.map((s) => s.rssMb[n] ?? 0))]));
  // RSS at each tenth of the run: flat or growing?
  const tenths = Array.from(
    { length: 10 },
    (_, i) => samples[Math.floor(((i + 1) * (samples.length - 1)) / 10)]!,
  );
  fs.writeFileSync(path.join(dir, 'rss-samples.json'), JSON.stringify(samples));
  return {
    seeds,
    size,
    workers: workerCount,
    wall_s: Math.round(wall),
    ...runFigures(result, history),
    peak_rss_mb: peak,
    rss_mb_by_tenth: tenths.map((s) => ({ t: s.t, ...s.rssMb })),
    postgres_data_mb: Math.round(pgdataBytes / 1024 / 1024),
    bucket_objects: objects,
    bucket_mb: Math.round(bucketBytes / 1024 / 1024),
    dir,
  };
}

if (require.main === module) {
  const [seeds, size, workers, concurrency] = process.argv.slice(2).map(Number);
  printResultAndExit(measureCluster(seeds ?? 100_000, size ?? 2000, workers || 2, concurrency || 64));
}
