import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort, temporalAnswers } from '../src/temporal/devServer';
import { provisionTemporalCli } from '../src/temporal/provision';
import { tmpDir, uniqueQueue } from './helpers/env';

/**
 * `codeclm server` driven as a user would: a child process, real ports, real signals. It starts its
 * own dev servers (not the suite's shared one) because it stops and restarts them.
 */

const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'bin', 'codeclm.js');

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Running[] = [];

function runCli(args: string[]): Running {
  const child = spawn(process.execPath, [cli, ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const running = { child, stdout: () => out, stderr: () => err, exit };
  started.push(running);
  return running;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, proc?: Running) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (proc && proc.child.exitCode !== null)
      throw new Error(`server exited early while waiting for ${what}:\n${proc.stderr()}`);
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${proc ? `:\n${proc.stderr()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopWithSigterm(proc: Running, withinMs: number) {
  const t0 = Date.now();
  proc.child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), withinMs).unref());
  const result = await Promise.race([proc.exit, timer]);
  return { result, ms: Date.now() - t0 };
}

afterAll(async () => {
  // Whatever a failed test left running gets a clean stop, so no dev server outlives the suite.
  for (const proc of started) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.exit;
    }
  }
});

test('codeclm server runs a persistent dev server with a Web UI and stops cleanly on SIGTERM', async () => {
  const dir = tmpDir('codeclm-server-test-');
  const db = path.join(dir, 't.db');
  const port = await freePort();
  let uiPort = await freePort();
  while (uiPort === port) uiPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = ['server', '--db', db, '--port', String(port), '--ui-port', String(uiPort)];

  const first = runCli(args);
  await waitUntil('the frontend to answer', () => temporalAnswers(address, 1000), 90_000, first);
  await waitUntil('the ready banner', async () => first.stderr().includes('Press Ctrl-C'), 10_000, first);
  expect(first.stderr()).toContain(address);
  expect(first.stderr()).toContain(`http://127.0.0.1:${uiPort}`);

  // The real Temporal CLI sees the default namespace.
  const temporal = await provisionTemporalCli({ allowInstall: false, log: () => undefined });
  const list = spawnSync(temporal, ['operator', 'namespace', 'list', '--address', address], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(list.status).toBe(0);
  expect(list.stdout).toMatch(/\bdefault\b/);

  // The Web UI answers HTTP.
  const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
  expect(ui.status).toBe(200);

  // A workflow with no worker stays Running: it must survive the restart below.
  const connection = await Connection.connect({ address });
  const workflowId = `server-test-${Date.now()}`;
  try {
    const client = new Client({ connection });
    await client.workflow.start('neverPolledWorkflow', {
      taskQueue: uniqueQueue('server-test'),
      workflowId,
      args: [],
    });
    expect((await client.workflow.getHandle(workflowId).describe()).status.name).toBe('RUNNING');
  } finally {
    await connection.close();
  }

  const stop = await stopWithSigterm(first, 15_000);
  expect(stop.result).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(db)).toBe(true);
  expect(await temporalAnswers(address, 1000)).toBe(false);

  // Same db, same ports: the workflow is still there and still running.
  const second = runCli(args);
  await waitUntil('the restarted frontend to answer', () => temporalAnswers(address, 1000), 90_000, second);
  const again = await Connection.connect({ address });
  try {
    const client = new Client({ connection: again });
    const handle = client.workflow.getHandle(workflowId);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.terminate('server test done');
  } finally {
    await again.close();
  }
  const stop2 = await stopWithSigterm(second, 15_000);
  expect(stop2.result).toEqual({ code: 0, signal: null });
});

test('codeclm server exits 1 naming the port when the port is taken', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as net.AddressInfo).port;
  try {
    const dir = tmpDir('codeclm-server-test-');
    const proc = runCli([
      'server',
      '--db',
      path.join(dir, 't.db'),
      '--port',
      String(taken),
      '--ui-port',
      String(await freePort()),
    ]);
    const { code } = await proc.exit;
    expect(code).toBe(1);
    expect(proc.stderr()).toContain(String(taken));
    expect(proc.stderr()).toMatch(/already in use/);
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test('codeclm server --port abc is a usage error (exit 2)', async () => {
  const proc = runCli(['server', '--port', 'abc']);
  const { code } = await proc.exit;
  expect(code).toBe(2);
  expect(proc.stderr()).toMatch(/--port/);
});

test('codeclm server exits 1 when the dev server dies under it', async () => {
  const dir = tmpDir('codeclm-server-test-');
  const port = await freePort();
  const proc = runCli([
    'server',
    '--db',
    path.join(dir, 't.db'),
    '--port',
    String(port),
    '--headless',
    '--json',
  ]);
  await waitUntil('the JSON ready line', async () => proc.stdout().includes('"pid"'), 90_000, proc);
  const { pid } = JSON.parse(proc.stdout().trim().split('\n')[0]) as { pid: number };
  process.kill(pid, 'SIGKILL');
  const { code } = await proc.exit;
  expect(code).toBe(1);
  expect(proc.stderr()).toMatch(/unexpectedly/);
});
