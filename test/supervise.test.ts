import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { superviseUntilReady } from '../src/util/supervise';

/** The supervisor every server codeclm starts goes through (dev server, cluster, llama server). */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-supervise-'));

function child(script: string, logFile: string) {
  const out = fs.openSync(logFile, 'a');
  const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return c;
}

test('a process that dies while starting fails with its log tail and exit', async () => {
  const logFile = path.join(dir, 'dies.log');
  const c = child('console.log("bind: address already in use"); process.exit(3)', logFile);
  await expect(
    superviseUntilReady(c, {
      name: 'test server',
      logFile,
      ready: async () => false,
      where: '127.0.0.1:1',
      startTimeoutMs: 10_000,
      pollMs: 50,
    }),
  ).rejects.toThrow(/test server exited \(code 3\) while starting .*\n.*address already in use/);
});

test('ready, then stop ends it gracefully; a second stop is harmless', async () => {
  const logFile = path.join(dir, 'ok.log');
  const c = child(
    'process.on("SIGTERM", () => process.exit(0)); console.log("up"); setInterval(() => {}, 1000)',
    logFile,
  );
  let polls = 0;
  const s = await superviseUntilReady(c, {
    name: 'test server',
    logFile,
    // Ready once it says so, and not before the third probe.
    ready: async () => ++polls >= 3 && fs.readFileSync(logFile, 'utf8').includes('up'),
    where: 'here',
    startTimeoutMs: 10_000,
    pollMs: 20,
  });
  expect(polls).toBeGreaterThanOrEqual(3);
  await s.stop();
  expect(await s.exited).toEqual({ code: 0, signal: null });
  await s.stop();
});

test('never ready: killed at the deadline, with the caller’s error class', async () => {
  class SetupError extends Error {}
  const logFile = path.join(dir, 'slow.log');
  const c = child('setInterval(() => {}, 1000)', logFile);
  await expect(
    superviseUntilReady(c, {
      name: 'slow server',
      logFile,
      ready: async () => false,
      where: '127.0.0.1:2',
      startTimeoutMs: 300,
      pollMs: 50,
      error: (m) => new SetupError(m),
    }),
  ).rejects.toBeInstanceOf(SetupError);
  await new Promise((r) => c.once('exit', r));
  expect(c.signalCode).toBe('SIGKILL');
});
