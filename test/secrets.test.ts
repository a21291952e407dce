import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, type WorkflowExecutionDescription } from '@temporalio/client';
import { provisionTemporalCli } from '../src/temporal/provision';
import { startSimulator } from '../src/sim/server';
import { testAddress, tmpDir } from './helpers/env';

/**
 * Secrets hygiene, through the CLI as a user runs it: `codeclm run --worker` against the suite's
 * Temporal server, roles pointing at the simulator (through a proxy that checks the keys really are
 * sent, and now and then answers 401 quoting the key back, as real providers do), API keys in the
 * environment variables the config names. The keys must appear nowhere: not in any workflow history
 * (run and children, read with `temporal workflow show`), not in the CLI's stdout or stderr (worker
 * logs included), not in any file of the out dir. The same for the encryption key when it is on.
 */
// A whole CLI run plus follow-up commands; each child process has its own shorter timeout.
jest.setTimeout(200_000);
const exec = promisify(execFile);
const root = path.join(__dirname, '..');
const cli = path.join(root, 'bin', 'codeclm.js');
const seedsFile = path.join(root, 'examples', 'seeds.jsonl');

const STRONG_KEY = 'sk-codeclm-FAKE-4f9a1c';
// No "sk-" prefix: only the client's explicit scrubbing (not a key-shaped pattern) can catch this one.
const TARGET_KEY = 'codeclm-FAKE-target-77e2b0';
const ENCRYPTION_KEY = crypto.randomBytes(32).toString('base64');

let sim: Awaited<ReturnType<typeof startSimulator>>;
let proxy: http.Server;
let proxyUrl: string;
let temporalCli: string;
const seenAuth = new Set<string>();
let rejected = 0;

beforeAll(async () => {
  temporalCli = await provisionTemporalCli({ allowInstall: false, log: () => undefined });
  sim = await startSimulator({ port: 0, seed: 5 });
  const target = new URL(sim.url);
  let n = 0;
  proxy = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seenAuth.add(auth);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // Every 9th completion of the run: a provider's 401 that quotes the key it was given. (Not
      // the preflight check's: a 401 there stops `run` before it starts, by design.)
      const isCheck = body.includes('This is a connectivity check.');
      if (req.url?.includes('chat/completions') && !isCheck && ++n % 9 === 4) {
        rejected++;
        const key = auth.replace(/^Bearer /, '');
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: {
              message: `Incorrect API key provided: ${key}. Find your key at https://example.invalid`,
              type: 'invalid_request_error',
              code: 'invalid_api_key',
            },
          }),
        );
        return;
      }
      const fwd = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: target.host },
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on('error', () => res.destroy());
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await sim?.close();
});

function writeConfig(dir: string): string {
  const file = path.join(dir, 'codeclm.config.json');
  const role = (model: string, apiKeyEnv: string) => ({ baseURL: proxyUrl, model, apiKeyEnv });
  fs.writeFileSync(
    file,
    JSON.stringify({
      roles: {
        strong: role('sim-strong', 'CODECLM_FAKE_STRONG_KEY'),
        target: role('sim-target', 'CODECLM_FAKE_TARGET_KEY'),
      },
      method: { poolSize: 5, maxIterations: 2 },
      // llmMaxAttempts: a finite retry budget (also keeps the run short when the proxy says 401).
      limits: { size: 5, concurrency: 8, topUpRounds: 0, llmMaxAttempts: 10 },
    }),
  );
  return file;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function codeclm(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 100_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`codeclm ${args.join(' ')} timed out\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: testAddress(),
    CODECLM_HOME: home,
    OPENAI_API_KEY: STRONG_KEY,
    CODECLM_FAKE_STRONG_KEY: STRONG_KEY,
    CODECLM_FAKE_TARGET_KEY: TARGET_KEY,
    ...extra,
  };
  delete env.CODECLM_ENCRYPTION_KEY;
  if (extra.CODECLM_ENCRYPTION_KEY) env.CODECLM_ENCRYPTION_KEY = extra.CODECLM_ENCRYPTION_KEY;
  return env;
}

/** Forms a key could leak in: as is, base64 (payload data), JSON-escaped, hex. */
function forms(secret: string): string[] {
  return [secret, Buffer.from(secret).toString('base64').slice(0, 16), Buffer.from(secret).toString('hex')];
}

function expectNowhere(where: string, text: string, secrets: string[]): void {
  for (const s of secrets)
    for (const f of forms(s)) expect([where, s, text.includes(f)]).toEqual([where, s, false]);
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

/** The run and its children as `temporal workflow show --output json` prints them, payload data decoded too. */
async function historyTexts(runId: string): Promise<Map<string, string>> {
  const client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
  const ids = [runId];
  try {
    for await (const wf of client.workflow.list({
      query: `WorkflowId STARTS_WITH "${runId}/"`,
    }) as AsyncIterable<WorkflowExecutionDescription>) {
      ids.push(wf.workflowId);
    }
  } finally {
    await client.connection.close();
  }
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 8) {
    await Promise.all(
      ids.slice(i, i + 8).map(async (id) => {
        const { stdout } = await exec(
          temporalCli,
          ['workflow', 'show', '--workflow-id', id, '--output', 'json', '--address', testAddress()],
          {
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        const decoded = [...stdout.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) =>
          Buffer.from(m[1]!, 'base64').toString('utf8'),
        );
        out.set(id, `${stdout}\n${decoded.join('\n')}`);
      }),
    );
  }
  return out;
}

test('an API key given by environment variable appears in no history, CLI output, log, report or output file', async () => {
  const work = tmpDir('codeclm-secrets-');
  const outDir = path.join(work, 'out');
  const runId = `secrets-${Date.now()}`;
  const env = cliEnv(path.join(work, 'home'));
  const res = await codeclm(
    [
      'run',
      '--seeds',
      seedsFile,
      '--out',
      outDir,
      '--config',
      writeConfig(work),
      '--run-id',
      runId,
      '--worker',
      '--json',
    ],
    env,
  );
  if (res.code !== 0) throw new Error(`codeclm run exited ${res.code}:\n${res.stderr.slice(-3000)}`);
  const result = JSON.parse(res.stdout.trim().split('\n').pop()!) as { counters: { kept: number } };
  expect(result.counters.kept).toBeGreaterThan(0);

  // The keys did reach the model endpoint (so their absence elsewhere means something), and the
  // proxy's key-quoting 401s did happen.
  expect(seenAuth).toContain(`Bearer ${STRONG_KEY}`);
  expect(seenAuth).toContain(`Bearer ${TARGET_KEY}`);
  expect(rejected).toBeGreaterThan(0);

  const secrets = [STRONG_KEY, TARGET_KEY];
  expectNowhere('run stdout', res.stdout, secrets);
  expectNowhere('run stderr', res.stderr, secrets);

  const histories = await historyTexts(runId);
  expect(histories.size).toBeGreaterThan(3);
  for (const [id, text] of histories) expectNowhere(`history ${id}`, text, secrets);
  // The 401s were recorded (as failures, in history and report), with the key scrubbed.
  const all = [...histories.values()].join('\n');
  expect(all).toMatch(/HTTP 401/);

  const files = filesUnder(outDir);
  for (const f of ['dataset.jsonl', 'report.json', 'report.md'])
    expect(files).toContain(path.join(outDir, f));
  for (const f of files) expectNowhere(path.relative(outDir, f), fs.readFileSync(f, 'latin1'), secrets);
  expect(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')).toMatch(/401/);

  // The other commands that print run data.
  const status = await codeclm(['status', runId, '--json'], env, 30_000);
  expect(status.code).toBe(0);
  expectNowhere('status', status.stdout + status.stderr, secrets);
  const exported = path.join(work, 'export.jsonl');
  const exp = await codeclm(['export', runId, '--format', 'openai', '--out', exported], env, 30_000);
  expect(exp.code).toBe(0);
  expectNowhere('export', exp.stdout + exp.stderr + fs.readFileSync(exported, 'utf8'), secrets);
});

test('with encryption on, neither the encryption key nor the API keys appear anywhere; a bad key is refused without echoing it', async () => {
  const work = tmpDir('codeclm-secrets-enc-');
  const outDir = path.join(work, 'out');
  const runId = `secrets-enc-${Date.now()}`;
  const env = cliEnv(path.join(work, 'home'), { CODECLM_ENCRYPTION_KEY: ENCRYPTION_KEY });
  const res = await codeclm(
    [
      'run',
      '--seeds',
      seedsFile,
      '--out',
      outDir,
      '--config',
      writeConfig(work),
      '--run-id',
      runId,
      '--worker',
    ],
    env,
  );
  if (res.code !== 0) throw new Error(`codeclm run exited ${res.code}:\n${res.stderr.slice(-3000)}`);
  const secrets = [
    STRONG_KEY,
    TARGET_KEY,
    ENCRYPTION_KEY,
    Buffer.from(ENCRYPTION_KEY, 'base64').toString('hex'),
  ];
  expectNowhere('run output', res.stdout + res.stderr, secrets);
  for (const [id, text] of await historyTexts(runId)) {
    expectNowhere(`history ${id}`, text, secrets);
    expect(text).toContain('YmluYXJ5L2VuY3J5cHRlZA=='); // base64 of binary/encrypted
  }
  for (const f of filesUnder(outDir))
    expectNowhere(path.relative(outDir, f), fs.readFileSync(f, 'latin1'), secrets);

  // status decrypts with the key...
  const status = await codeclm(['status', runId, '--json'], env, 30_000);
  expect(status.code).toBe(0);
  expect((JSON.parse(status.stdout) as { state: string }).state).toBe('completed');
  // ...and a key of the wrong size is a usage error naming the variable, never showing the value.
  const bad = crypto.randomBytes(20).toString('base64');
  const refused = await codeclm(['status', runId], { ...env, CODECLM_ENCRYPTION_KEY: bad }, 30_000);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/CODECLM_ENCRYPTION_KEY: the key is 20 bytes; AES-256 needs exactly 32/);
  expect(refused.stderr).not.toContain(bad);
});
