import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { provisionAndStartLlamaServer, type LlamaServer } from '../src/llmserver/server';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';

/**
 * The product against a real model server, as a user would drive it: llama-cpp-python's
 * OpenAI-compatible server with SmolLM2-135M-Instruct, both provisioned by src/llmserver (cached;
 * .ci/run provisions them before the tests). The CLI runs as a real process with only
 * OPENAI_BASE_URL and model names set. A counting proxy in front of the server counts every
 * chat-completion response it answered, so the reports' call counts are checked against what the
 * server actually served. The model generates ~20 tokens/s on 2 cores: one server for the file.
 *
 * If provisioning fails, every test here fails with the provisioning error (never a silent skip).
 * In CI (CI=true) nothing is built here: .ci/run did that, and its error is reported.
 */
const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');
const fileStarted = Date.now();
const timings: string[] = [];
const CHECK_MARKER = 'This is a connectivity check.';

interface CountingProxy {
  url: string;
  /** /v1/chat/completions responses delivered, by status. */
  byStatus: Record<string, number>;
  total(): number;
  /** Of those, the ones answering `codeclm check`'s probe (told apart by its prompt). */
  checkCalls: number;
  /** Responses the server produced after the client had gone (not delivered, not counted above). */
  abandoned: number;
  reset(): void;
  close(): Promise<void>;
}

async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const target = new URL(upstream);
  const state = { byStatus: {} as Record<string, number>, checkCalls: 0, abandoned: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const isChat = /\/chat\/completions$/.test((req.url ?? '').split('?')[0]!);
      const up = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (upRes) => {
          const out: Buffer[] = [];
          upRes.on('data', (c: Buffer) => out.push(c));
          upRes.on('end', () => {
            if (res.destroyed || !res.socket || res.socket.destroyed) {
              if (isChat) state.abandoned++;
              return;
            }
            if (isChat) {
              const status = String(upRes.statusCode);
              state.byStatus[status] = (state.byStatus[status] ?? 0) + 1;
              if (body.includes(CHECK_MARKER)) state.checkCalls++;
            }
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            res.end(Buffer.concat(out));
          });
        },
      );
      up.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `proxy: ${err.message}` } }));
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    get byStatus() {
      return state.byStatus;
    },
    total: () => Object.values(state.byStatus).reduce((a, b) => a + b, 0),
    get checkCalls() {
      return state.checkCalls;
    },
    get abandoned() {
      return state.abandoned;
    },
    reset() {
      state.byStatus = {};
      state.checkCalls = 0;
      state.abandoned = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let llama: LlamaServer | undefined;
let proxy: CountingProxy | undefined;
let provisionError: Error | undefined;
const work = tmpDir('codeclm-real-model-');

beforeAll(async () => {
  const started = Date.now();
  try {
    llama = await provisionAndStartLlamaServer({
      logFile: path.join(work, 'llama-server.log'),
      // CI provisions in .ci/run (under its own time limit); a second 5-minute build here would only
      // repeat that failure.
      allowInstall: !process.env.CI,
      log: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (err) {
    const reported = process.env.CODECLM_LLAMA_PROVISION_LOG;
    const ci =
      reported && fs.existsSync(reported)
        ? `\n.ci/run's provisioning said:\n${fs.readFileSync(reported, 'utf8')}`
        : '';
    provisionError = new Error(
      `the real model server could not be provisioned: ${(err as Error).message}${ci}`,
    );
    return;
  }
  proxy = await startCountingProxy(llama.url);
  timings.push(`server provisioned and started: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 45 * 60_000);

afterAll(async () => {
  await proxy?.close();
  await llama?.stop();
  timings.push(`whole file: ${((Date.now() - fileStarted) / 1000).toFixed(1)} s`);
  process.stderr.write(`real-model timings:\n  ${timings.join('\n  ')}\n`);
});

function ready(): { llama: LlamaServer; proxy: CountingProxy } {
  if (provisionError) throw provisionError;
  return { llama: llama!, proxy: proxy! };
}

/** The environment a user would set for a local server: a base URL and model names, nothing else. */
function userEnv(url: string, alias: string): NodeJS.ProcessEnv {
  return {
    OPENAI_BASE_URL: url,
    OPENAI_API_KEY: '',
    CODECLM_STRONG_MODEL: alias,
    CODECLM_TARGET_MODEL: alias,
    CODECLM_JUDGE_MODEL: alias,
  };
}

/**
 * run and eval use the defaults (16 requests in flight per role, 120 s timeout, 4 iterations, 2
 * top-up rounds) against a server that works one request at a time at ~20 tokens/s: strong, target
 * and judge are one 135M model, so few pairs are kept and the run usually ends when its top-up rounds
 * are spent (measured: 211 calls in about 8 minutes). The time limits leave room for a slower machine.
 */
const children = new Set<ChildProcess>();
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

/**
 * The CLI as a separate process. Past `timeoutMs` it is stopped and the result says so (with its
 * output), so a slow run fails its test with a reason instead of outliving it.
 */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: {
        ...process.env,
        // The suite's Temporal server and a worker in the CLI process, on a queue of its own.
        TEMPORAL_ADDRESS: testAddress(),
        CODECLM_TASK_QUEUE: uniqueQueue('real-model'),
        CODECLM_HOME: path.join(work, 'home'),
        CODECLM_CACHE: 'off',
        ...env,
      },
      cwd: work,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    children.add(child);
    const timer = setTimeout(() => {
      stderr += `\n[test] stopped after ${timeoutMs / 1000} s: ${args[0]} did not finish in time\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

function checkCallsPrinted(stderr: string): number {
  const m = /check made (\d+) LLM call\(s\)/.exec(stderr);
  if (!m) throw new Error(`the preflight check did not report its calls:\n${stderr.slice(-2000)}`);
  return Number(m[1]);
}

test(
  'codeclm check finds the server, the model and the dialect it speaks',
  async () => {
    const { llama, proxy } = ready();
    proxy.reset();
    const r = await cli(['check', '--json'], userEnv(proxy.url, llama.alias), 4 * 60_000);
    timings.push(`check: ${r.seconds.toFixed(1)} s`);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(r.stdout) as { ok: boolean; endpoints: Record<string, unknown>[] };
    expect(result.endpoints).toHaveLength(1);
    expect(result.endpoints[0]).toMatchObject({
      roles: ['strong', 'target', 'judge'],
      model: llama.alias,
      reachable: 'yes',
      auth: 'ok',
      modelKnown: 'yes',
      // llama-cpp-python refuses json_schema (HTTP 500, a validation error) and enforces a schema
      // sent as response_format {"type": "json_object", "schema": ...}.
      dialect: 'json_object_schema',
      ok: true,
    });
    // Its calls, as counted at the server: the refused json_schema attempt and the one that worked.
    expect(proxy.total()).toBe(result.endpoints[0]!.calls);
    expect(proxy.checkCalls).toBe(proxy.total());
  },
  5 * 60_000,
);

test(
  'codeclm run --size 3 with only OPENAI_BASE_URL and model names completes, and its report counts every call',
  async () => {
    const { llama, proxy } = ready();
    proxy.reset();
    const seeds = path.join(work, 'seeds.jsonl');
    fs.writeFileSync(
      seeds,
      [
        'Write a short poem about the sea.',
        'Explain what a prime number is.',
        'Give three tips for staying focused while studying.',
      ]
        .map((instruction) => JSON.stringify({ instruction }))
        .join('\n'),
    );
    const out = path.join(work, 'run-out');
    const r = await cli(
      ['run', '--seeds', seeds, '--out', out, '--size', '3', '--worker', '--json'],
      userEnv(proxy.url, llama.alias),
      25 * 60_000,
    );
    timings.push(`run --size 3: ${r.seconds.toFixed(1)} s, ${proxy.total()} chat completions served`);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-4000) }).toEqual({
      code: 0,
      stderr: '',
    });
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as {
      counts: { kept: number; dropped: number; failed: number; instructions: number };
      usage: { total: { calls: number } };
    };
    const c = report.counts;
    expect(c.instructions).toBeGreaterThan(0);
    expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
    // Every chat completion the server answered is either the preflight check's (printed by run, not
    // part of the run) or counted in the report.
    const checkCalls = checkCallsPrinted(r.stderr);
    expect(proxy.checkCalls).toBe(checkCalls);
    // A request the client gave up on (timed out) still ran to the end at the server, so it counts.
    expect(proxy.total() + proxy.abandoned - checkCalls).toBe(report.usage.total.calls);
  },
  26 * 60_000,
);

test(
  'codeclm eval on 5 instructions completes, and its report counts every call',
  async () => {
    const { llama, proxy } = ready();
    proxy.reset();
    const file = path.join(work, 'eval.jsonl');
    fs.writeFileSync(
      file,
      [
        'What is 7 times 8?',
        'Name a primary colour.',
        'Say hello in French.',
        'What is the capital of Italy?',
        'Spell "cat" backwards.',
      ]
        .map((instruction) => JSON.stringify({ instruction }))
        .join('\n'),
    );
    const out = path.join(work, 'eval-out');
    const r = await cli(
      ['eval', '--instructions', file, '--out', out, '--worker', '--json'],
      userEnv(proxy.url, llama.alias),
      12 * 60_000,
    );
    timings.push(`eval on 5: ${r.seconds.toFixed(1)} s, ${proxy.total()} chat completions served`);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-4000) }).toEqual({
      code: 0,
      stderr: '',
    });
    const report = JSON.parse(fs.readFileSync(path.join(out, 'eval-report.json'), 'utf8')) as {
      instructions: number;
      judged: number;
      failed: number;
      usage: { total: { calls: number } };
    };
    expect(report.instructions).toBe(5);
    expect(report.judged + report.failed).toBe(5);
    const checkCalls = checkCallsPrinted(r.stderr);
    // A request the client gave up on (timed out) still ran to the end at the server, so it counts.
    expect(proxy.total() + proxy.abandoned - checkCalls).toBe(report.usage.total.calls);
  },
  13 * 60_000,
);
