import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { codeclmRun } from '../src/workflows/pipeline';
import { pendingRetries, retryLine, summarise } from '../src/cli/retries';
import { simConfig, simRunInput } from './helpers/config';
import { startTestWorker, type TestWorker } from './helpers/pipeline';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';
import { until } from './helpers/control';

/**
 * Issue 12 item 4: while a provider is down, activities retry, and that is visible: `codeclm status`
 * (human and --json) shows per stage how many are retrying, the highest attempt and the last error,
 * from Temporal's pending-activity info; `codeclm run` prints where the worker's logs go and one
 * retry line instead of the SDK's stack traces.
 */
const run = promisify(execFile);
const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');

/** A provider that is down: every request gets 503, as an overloaded or restarting server answers. */
let down: http.Server;
let downUrl: string;
let requests = 0;
let w: TestWorker;

beforeAll(async () => {
  down = http.createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'upstream is restarting', type: 'server_error' } }));
  });
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/v1`;
  w = await startTestWorker('retries', { cache: false });
});
afterAll(async () => {
  await w?.stop();
  await new Promise((r) => down?.close(r));
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [bin, ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: testAddress(), ...env },
    timeout: 120_000,
  });
}

test('status of a run whose provider is down shows the retrying activities and the last error', async () => {
  const runId = `retries-status-${Date.now()}`;
  const outDir = tmpDir('codeclm-retries-');
  const config = simConfig(downUrl, {
    limits: { size: 4, concurrency: 4, llmMaxRetryIntervalSeconds: 1 },
    method: { poolSize: 2 },
  });
  const input = simRunInput({ runId, outDir, config, taskQueue: w.taskQueue });
  const handle = await w.client.workflow.start(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [input],
  });
  try {
    // Retrying from the third attempt on (1 s apart): the encode activities of the seed chunk.
    await until(
      'encode activities on their third attempt',
      async () => {
        const s = await pendingRetries(w.client.workflow, runId);
        return s.max_attempt >= 3 ? s : undefined;
      },
      60_000,
      500,
    );

    const json = JSON.parse((await cli(['status', runId, '--json'])).stdout) as {
      state: string;
      retries: {
        retrying: number;
        max_attempt: number;
        last_error: string;
        per_stage: Record<string, { retrying: number; max_attempt: number; last_error: string }>;
      };
    };
    expect(json.state).toBe('running');
    expect(json.retries.retrying).toBeGreaterThanOrEqual(1);
    expect(json.retries.max_attempt).toBeGreaterThanOrEqual(3);
    expect(Object.keys(json.retries.per_stage)).toEqual(['encode']);
    expect(json.retries.per_stage.encode!.retrying).toBe(json.retries.retrying);
    expect(json.retries.last_error).toMatch(/HTTP 503/);
    expect(json.retries.last_error).toContain('upstream is restarting');

    const human = (await cli(['status', runId])).stdout;
    expect(human).toMatch(
      /retrying: \d+ activit(y|ies) \(encode \d+\), attempt up to \d+, last error: .*HTTP 503/,
    );
    expect(human).toMatch(
      / {4}encode +\d+ retrying, attempt up to \d+, last error: .*upstream is restarting/,
    );
  } finally {
    await handle.terminate('test over');
  }
});

test('run: worker logs go to a file named once; the progress shows one retry line, no stack trace', async () => {
  const home = tmpDir('codeclm-retries-home-');
  const outDir = path.join(home, 'out');
  const configFile = path.join(home, 'codeclm.config.json');
  const role = { baseURL: downUrl, apiKeyEnv: 'CODECLM_TEST_NO_KEY' };
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      roles: { strong: { ...role, model: 'big' }, target: { ...role, model: 'small' } },
      // Each encode call gives up after 8 attempts 1 s apart: the run fails (no seed encoded) after
      // about 8 s of retrying, long enough for the progress to show it.
      limits: { size: 2, llmMaxAttempts: 8, llmMaxRetryIntervalSeconds: 1 },
    }),
  );
  const seeds = path.join(home, 'seeds.jsonl');
  fs.writeFileSync(seeds, '{"prompt": "Plan a picnic for six."}\n{"prompt": "Fix my bike chain."}\n');
  const before = requests;
  const result = await cli(
    ['run', '--seeds', seeds, '--out', outDir, '--config', configFile, '--worker', '--no-check'],
    { CODECLM_HOME: home, CODECLM_TASK_QUEUE: uniqueQueue('retries-cli'), CODECLM_TEST_NO_KEY: 'x' },
  ).then(
    () => {
      throw new Error('the run should fail: its provider is down');
    },
    (err: { code: number; stderr: string }) => err,
  );
  expect(result.code).toBe(1);
  expect(requests - before).toBeGreaterThanOrEqual(8);
  const stderr = result.stderr;
  const logLine = /codeclm: worker logs: (\S+)/.exec(stderr);
  expect(logLine).not.toBeNull();
  expect(stderr.match(/worker logs:/g)).toHaveLength(1);
  const logFile = logLine![1]!;
  expect(logFile.startsWith(path.join(home, 'logs', 'worker-'))).toBe(true);
  expect(stderr).toMatch(
    /codeclm: retrying: [12] activit(y|ies) \(encode [12]\), attempt up to \d+, last error: .*HTTP 503/,
  );
  // No SDK stack trace in the progress output ...
  expect(stderr).not.toMatch(/^\s+at \S+ \(.*:\d+:\d+\)$/m);
  expect(stderr).not.toMatch(/Activity failed/i);
  // ... they are in the log file.
  const log = fs.readFileSync(logFile, 'utf8');
  expect(log).toMatch(/\[WARN\] Activity failed/);
  expect(log).toContain('HTTP 503');
});

test('the retry line: per stage, highest attempt, the newest failure', () => {
  const s = summarise([
    { stage: 'answer', attempt: 3, error: 'older', startedMs: 1000 },
    { stage: 'answer', attempt: 5, error: 'LLM endpoint unavailable (HTTP 503): x', startedMs: 3000 },
    { stage: 'judge', attempt: 2, error: 'rate limited (HTTP 429)', startedMs: 2000 },
    { stage: 'answer', attempt: 1, startedMs: 4000 }, // first attempt: not retrying
  ]);
  expect(s.retrying).toBe(3);
  expect(s.per_stage).toEqual({
    answer: { retrying: 2, max_attempt: 5, last_error: 'LLM endpoint unavailable (HTTP 503): x' },
    judge: { retrying: 1, max_attempt: 2, last_error: 'rate limited (HTTP 429)' },
  });
  expect(retryLine(s)).toBe(
    'retrying: 3 activities (answer 2, judge 1), attempt up to 5, last error: LLM endpoint unavailable (HTTP 503): x',
  );
  expect(retryLine(summarise([{ stage: 'answer', attempt: 1, startedMs: 0 }]))).toBeUndefined();
});
