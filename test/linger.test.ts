import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/env';
import { freePort, portIsOpen } from '../src/temporal/devServer';
import { controlClient } from '../src/cli/runtime';
import { takeLease } from '../src/cli/serverLease';

/**
 * A detached embedded run keeps its dev server up CODECLM_DETACH_LINGER_SECONDS after the run ends,
 * for `status`, `wait`, `export` and `run --run-id`. A command that attached during the linger must
 * keep the server up until it is done, and the linger counts again from when it finished.
 */
const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');
const seeds = path.join(__dirname, '..', 'examples', 'formats', 'vicuna.jsonl');
const LINGER_S = 3;
let env: NodeJS.ProcessEnv;
let cwd: string;
let port: number;

beforeAll(async () => {
  cwd = tmpDir('codeclm-linger-');
  port = await freePort();
  env = {
    ...process.env,
    TEMPORAL_ADDRESS: '',
    OPENAI_API_KEY: '',
    OPENAI_BASE_URL: '',
    CODECLM_HOME: path.join(cwd, '.codeclm'),
    CODECLM_EMBEDDED_PORT: String(port),
    CODECLM_SIM_PORT: String(await freePort()),
    CODECLM_DETACH_LINGER_SECONDS: String(LINGER_S),
  };
});

function cli(
  args: string[],
  onStderr: (text: string) => void = () => undefined,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr(d.toString());
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Starts a detached run; resolves when the background copy has printed its result (the linger starts). */
async function detachedRunDone(runId: string): Promise<string> {
  const started = await cli([
    'run',
    '--seeds',
    seeds,
    '--out',
    runId,
    '--size',
    '2',
    '--detach',
    '--run-id',
    runId,
  ]);
  expect(started.code).toBe(0);
  const log = path.join(env.CODECLM_HOME!, 'runs', `${runId}.log`);
  await until(
    `run ${runId} to complete`,
    () => fs.readFileSync(log, 'utf8').includes(`run ${runId} completed`),
    90_000,
  );
  return log;
}

test('commands attached near the end of the linger keep the server up until they are done', async () => {
  const log = await detachedRunDone('linger-1');
  const lingerStart = Date.now();

  // What `status`, `wait` and `export` do, in this process so the timing is exact: attach shortly
  // before the linger is over, then keep using the server for twice the linger.
  await sleep(LINGER_S * 1000 - 1000);
  const client = await controlClient(env);
  let attached: Promise<Awaited<ReturnType<typeof cli>>>;
  try {
    while (Date.now() < lingerStart + 2 * LINGER_S * 1000) {
      const d = await client.workflow.getHandle('linger-1').describe();
      expect(d.status.name).toBe('COMPLETED');
      await sleep(200);
    }
    // Meanwhile `run --run-id` attaches; once it has, this process lets go, and the run's worker
    // start (bundling the workflows, seconds) outlasts the linger counted from here.
    let stderr = '';
    attached = cli(
      ['run', '--seeds', seeds, '--out', 'linger-1', '--size', '2', '--run-id', 'linger-1', '--json'],
      (d) => (stderr += d),
    );
    await until('run --run-id to attach', () => stderr.includes('already exists; attaching'), 60_000);
  } finally {
    await client.connection.close();
    (await takeLease(port)).release(); // what this command's exit does
  }
  const again = await attached;
  expect(again.stderr).toContain('using the Temporal server already running');
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout).runId).toBe('linger-1');
  const released = Date.now();

  // The linger counts again from the last command's end, and then the server does stop.
  await sleep(1000);
  expect(await portIsOpen(port)).toBe(true);
  await until(
    'the lingering server to stop',
    async () => !(await portIsOpen(port)),
    LINGER_S * 1000 + 20_000,
  );
  expect(Date.now() - released).toBeGreaterThanOrEqual(LINGER_S * 1000 - 500);
  expect(fs.readFileSync(log, 'utf8')).toContain('stays up 3 s after the last command');
});
