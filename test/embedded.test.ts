import fs from 'node:fs';
import path from 'node:path';
import { embeddedEnv, runCli } from './helpers/cli';
import { tmpDir } from './helpers/env';

/**
 * The embedded defaults as a new user meets them: no TEMPORAL_ADDRESS, no OPENAI_API_KEY. The
 * commands start their own dev server (state under CODECLM_HOME) and the offline simulator.
 */
let env: NodeJS.ProcessEnv;
let cwd: string;

beforeAll(async () => {
  cwd = tmpDir('codeclm-embedded-');
  env = await embeddedEnv(cwd, 30);
});

const cli = (args: string[]) => runCli(args, { env, cwd });

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

test('the demo runs the whole pipeline offline and says where the outputs are', async () => {
  const r = await cli(['demo', '--size', '15']);
  expect(r.stderr).toContain('OFFLINE LLM SIMULATOR');
  expect(r.code).toBe(0);
  const dataset = path.join(cwd, 'demo-out', 'dataset.jsonl');
  expect(r.stdout).toContain(dataset);
  expect(lines(dataset).length).toBeGreaterThanOrEqual(15);
  for (const f of ['report.json', 'report.md', 'report.html', 'README.md'])
    expect(fs.existsSync(path.join(cwd, 'demo-out', f))).toBe(true);
  // The state file stays for later runs; the embedded server stopped with the command.
  expect(fs.existsSync(path.join(env.CODECLM_HOME!, 'temporal.db'))).toBe(true);

  // Again: the earlier output is kept, this one goes beside it (an out dir holds one run).
  const before = fs.readFileSync(dataset, 'utf8');
  const again = await cli(['demo', '--size', '8']);
  expect(again.code).toBe(0);
  expect(again.stderr).toContain('demo-out holds an earlier run');
  expect(again.stdout).toContain(path.join(cwd, 'demo-out-2', 'dataset.jsonl'));
  expect(lines(path.join(cwd, 'demo-out-2', 'dataset.jsonl')).length).toBeGreaterThanOrEqual(8);
  expect(fs.readFileSync(dataset, 'utf8')).toBe(before);
});

test('--detach returns a run id; status, wait and export work on it; the same --run-id attaches', async () => {
  const seeds = path.join(__dirname, '..', 'examples', 'formats', 'vicuna.jsonl');
  const started = await cli([
    'run',
    '--seeds',
    seeds,
    '--out',
    'detached',
    '--size',
    '8',
    '--detach',
    '--run-id',
    'detached-1',
  ]);
  expect(started.code).toBe(0);
  expect(started.stdout.trim()).toBe('detached-1');

  const status = await cli(['status', 'detached-1', '--json']);
  expect(status.code).toBe(0);
  expect(['running', 'completed']).toContain(JSON.parse(status.stdout).state);

  expect((await cli(['wait', 'detached-1'])).code).toBe(0);
  const done = JSON.parse((await cli(['status', 'detached-1', '--json'])).stdout);
  expect(done.state).toBe('completed');
  expect(done.counters.kept).toBeGreaterThanOrEqual(8);
  expect(done.counters.llm_calls).toBeGreaterThan(0);

  const out = path.join(cwd, 'export.jsonl');
  expect((await cli(['export', 'detached-1', '--format', 'openai', '--out', out])).code).toBe(0);
  const exported = lines(out).map((l) => JSON.parse(l));
  expect(exported).toHaveLength(done.counters.kept);
  expect(exported[0].messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);

  // Re-running with the same id attaches: same result, no second run, no new records.
  const again = await cli([
    'run',
    '--seeds',
    seeds,
    '--out',
    'detached',
    '--size',
    '8',
    '--run-id',
    'detached-1',
    '--json',
  ]);
  expect(again.code).toBe(0);
  expect(again.stderr).toContain('already exists; attaching');
  expect(JSON.parse(again.stdout).counters.kept).toBe(done.counters.kept);
  expect(lines(path.join(cwd, 'detached', 'dataset.jsonl'))).toHaveLength(done.counters.kept);
});
