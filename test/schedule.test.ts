import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createWorker } from '../src/worker';
import { startSimulator } from '../src/sim/server';
import { freePort } from '../src/temporal/devServer';
import { versionName } from '../src/workflows/scheduled';
import { sleep, until } from './helpers/control';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';
import { makeSeeds, writeSeeds } from './helpers/seeds';

/**
 * `codeclm schedule` end to end, through the CLI as a user runs it, against the suite's Temporal
 * server, with a worker of this process on its own task queue (`--task-queue`) and the simulator.
 */
const exec = promisify(execFile);

const cli = path.join(__dirname, '..', 'bin', 'codeclm.js');

let sim: Awaited<ReturnType<typeof startSimulator>>;
let worker: Worker;
let running: Promise<void>;
let connection: NativeConnection;
const taskQueue = uniqueQueue('schedule');
const dir = tmpDir('codeclm-schedule-');
const home = path.join(dir, 'home');

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 5 });
  connection = await NativeConnection.connect({ address: testAddress() });
  worker = await createWorker({ connection, taskQueue, cache: { dir: path.join(dir, 'cache') } });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await sim?.close();
});

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: testAddress(),
    CODECLM_HOME: home,
    ...extra,
  };
  for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'CODECLM_TASK_QUEUE', 'CODECLM_ENCRYPTION_KEY'])
    delete env[k];
  return env;
}

async function codeclm(
  args: string[],
  env: NodeJS.ProcessEnv = baseEnv(),
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cli, ...args], {
      env,
      cwd: dir,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function versions(out: string): { all: string[]; published: string[] } {
  const vdir = path.join(out, 'versions');
  const all = fs.existsSync(vdir) ? fs.readdirSync(vdir).sort() : [];
  return { all, published: all.filter((v) => fs.existsSync(path.join(vdir, v, 'changes.json'))) };
}

test('version names sort by time and carry the execution id', () => {
  const a = versionName(new Date('2025-01-02T03:04:05.678Z'), '1a2b3c4d-5e6f-0000-0000-000000000000');
  expect(a).toBe('20250102T030405.678Z-1a2b3c4d');
  expect(versionName(new Date('2025-01-02T03:04:06.000Z'), '00000000') > a).toBe(true);
});

test('create validates config and seeds up front and needs a provider (exit 2)', async () => {
  const seeds = path.join(dir, 'bad-seeds.jsonl');
  writeSeeds(seeds, makeSeeds(3));
  const badConfig = path.join(dir, 'bad.json');
  fs.writeFileSync(badConfig, JSON.stringify({ limits: { size: 'three' } }));
  const out = path.join(dir, 'never');
  const r1 = await codeclm([
    'schedule',
    'create',
    'bad1',
    '--every',
    '3s',
    '--seeds',
    seeds,
    '--out',
    out,
    '--config',
    badConfig,
  ]);
  expect(r1.code).toBe(2);
  expect(r1.stderr).toMatch(/limits\.size/);
  const r2 = await codeclm([
    'schedule',
    'create',
    'bad2',
    '--every',
    '3s',
    '--seeds',
    path.join(dir, 'missing.jsonl'),
    '--out',
    out,
  ]);
  expect(r2.code).toBe(2);
  const r3 = await codeclm(['schedule', 'create', 'bad3', '--every', '3s', '--seeds', seeds, '--out', out]);
  expect(r3.code).toBe(2);
  expect(r3.stderr).toMatch(/no LLM provider/);
  const r4 = await codeclm([
    'schedule',
    'create',
    'bad4',
    '--every',
    'soon',
    '--seeds',
    seeds,
    '--out',
    out,
    '--config',
    badConfig,
  ]);
  expect(r4.code).toBe(2);
  const r5 = await codeclm([
    'schedule',
    'create',
    'bad5',
    '--every',
    '3s',
    '--cron',
    '* * * * *',
    '--seeds',
    seeds,
    '--out',
    out,
  ]);
  expect(r5.code).toBe(2);
  expect(fs.existsSync(out)).toBe(false);
});

test('without a server, schedule commands say so (exit 1)', async () => {
  const env = baseEnv({ CODECLM_EMBEDDED_PORT: String(await freePort()) });
  delete env.TEMPORAL_ADDRESS;
  const r = await codeclm(['schedule', 'list'], env);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no Temporal server is running/);
});

test('a schedule every 3s: runs write their own versions, latest follows, delete stops them', async () => {
  const id = `refresh-${process.pid}-${Date.now().toString(36)}`;
  const seeds = path.join(dir, 'seeds.jsonl');
  writeSeeds(seeds, makeSeeds(6));
  const config = path.join(dir, 'codeclm.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      roles: {
        strong: { baseURL: sim.url, model: 'sim-strong' },
        target: { baseURL: sim.url, model: 'sim-target' },
      },
      method: { poolSize: 3, maxIterations: 2 },
      limits: { concurrency: 8, topUpRounds: 0 },
    }),
  );
  const out = path.join(dir, 'out');
  const created = await codeclm([
    'schedule',
    'create',
    id,
    '--every',
    '3s',
    '--seeds',
    seeds,
    '--out',
    out,
    '--config',
    config,
    '--size',
    '3',
    '--task-queue',
    taskQueue,
    '--catchup-window',
    '1m',
  ]);
  if (created.code !== 0) throw new Error(`schedule create failed (${created.code}): ${created.stderr}`);
  expect(created.stdout).toMatch(new RegExp(`schedule ${id} created`));
  try {
    // The seed file is read at each run: change it after creation; later versions see it.
    writeSeeds(seeds, makeSeeds(8));
    const published = await until(
      'two published versions',
      () => {
        const v = versions(out).published;
        return v.length >= 2 ? v : undefined;
      },
      90_000,
    );
    expect(new Set(published).size).toBe(published.length);
    const second = path.join(out, 'versions', published[1]!);
    expect(fs.existsSync(path.join(second, 'dataset.jsonl'))).toBe(true);
    const changes = JSON.parse(fs.readFileSync(path.join(second, 'changes.json'), 'utf8')) as {
      previous: string;
      seeds: { current: number };
    };
    expect(changes.previous).toBe(published[0]);
    expect(changes.seeds.current).toBe(8);
    expect(fs.readFileSync(path.join(second, 'report.md'), 'utf8')).toMatch(
      /## Changes since the previous version/,
    );
    const report = JSON.parse(fs.readFileSync(path.join(second, 'report.json'), 'utf8')) as {
      changes?: unknown;
      run_id: string;
    };
    expect(report.changes).toBeDefined();

    // list / describe show the schedule, its spec, next times and recent runs.
    const listed = await codeclm(['schedule', 'list', '--json']);
    expect(listed.code).toBe(0);
    const views = JSON.parse(listed.stdout) as {
      schedule_id: string;
      spec: string;
      next_runs: string[];
      recent_runs: { workflow_id: string }[];
    }[];
    const mine = views.find((v) => v.schedule_id === id);
    expect(mine).toBeDefined();
    expect(mine!.spec).toBe('every 3s');
    expect(mine!.next_runs.length).toBeGreaterThan(0);
    expect(mine!.recent_runs.length).toBeGreaterThanOrEqual(2);
    const human = await codeclm(['schedule', 'describe', id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/every 3s/);
    expect(human.stdout).toContain(taskQueue);

    // A scheduled run is a run: `codeclm status` on its workflow id.
    const status = await codeclm(['status', report.run_id, '--json']);
    expect(status.code).toBe(0);
    const view = JSON.parse(status.stdout) as { state: string; out_dir: string; counters: { seeds: number } };
    expect(view.state).toBe('completed');
    expect(view.out_dir).toBe(second);
    expect(mine!.recent_runs.map((r) => r.workflow_id)).toContain(report.run_id);

    expect((await codeclm(['schedule', 'pause', id])).code).toBe(0);
    expect((await codeclm(['schedule', 'unpause', id])).code).toBe(0);
    expect((await codeclm(['schedule', 'trigger', id])).code).toBe(0);
  } finally {
    const deleted = await codeclm(['schedule', 'delete', id]);
    expect(deleted.code).toBe(0);
  }

  // Runs already started finish and publish; then nothing new appears.
  await until(
    'in-flight runs to finish',
    () => {
      const v = versions(out);
      return v.all.length === v.published.length ? true : undefined;
    },
    90_000,
  );
  const settled = versions(out).all;
  expect(settled.length).toBeGreaterThanOrEqual(2);
  await sleep(10_000);
  expect(versions(out).all).toEqual(settled);

  // latest (symlink) and LATEST (text) name the newest version; no version was overwritten.
  const newest = settled[settled.length - 1]!;
  expect(fs.readlinkSync(path.join(out, 'latest'))).toBe(path.join('versions', newest));
  expect(fs.readFileSync(path.join(out, 'LATEST'), 'utf8').trim()).toBe(newest);
  expect(fs.existsSync(path.join(out, 'latest', 'dataset.jsonl'))).toBe(true);
  for (const v of settled) {
    const owner = JSON.parse(fs.readFileSync(path.join(out, 'versions', v, '.version.json'), 'utf8')) as {
      workflowId: string;
    };
    const records = fs
      .readFileSync(path.join(out, 'versions', v, 'dataset.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean);
    for (const line of records)
      expect((JSON.parse(line) as { run_id: string }).run_id).toBe(owner.workflowId);
  }
  const gone = await codeclm(['schedule', 'describe', id]);
  expect(gone.code).toBe(1);
}, 240_000);
