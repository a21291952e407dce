import fs from 'node:fs';
import path from 'node:path';
import { checkEndpoints, type EndpointCheck } from '../src/cli/check';
import { loadConfig } from '../src/config/load';
import { startSimulator, type Simulator } from '../src/sim/server';
import { freePort } from '../src/temporal/devServer';
import { runCli, type CliResult } from './helpers/cli';
import { tmpDir } from './helpers/env';

/**
 * `codeclm check` and the preflight of run/eval/schedule against the simulator (a real HTTP server):
 * a working endpoint, an unknown model (404), a bad key (401), nothing listening, a 429 then OK.
 */
const KEY = 'sk-check-test-right-key';
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ seed: 3, apiKey: KEY, models: ['strong-m', 'target-m'] });
});
afterAll(() => sim.close());
beforeEach(() => fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/reset`, { method: 'POST' }));

function envFor(over: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    OPENAI_BASE_URL: sim.url,
    OPENAI_API_KEY: KEY,
    CODECLM_STRONG_MODEL: 'strong-m',
    CODECLM_TARGET_MODEL: 'target-m',
    ...over,
  };
}

async function check(env: NodeJS.ProcessEnv, retryWindowMs = 5000): Promise<EndpointCheck[]> {
  return checkEndpoints(loadConfig(undefined, env), { env, retryWindowMs });
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runCli(args, {
    env: { OPENAI_API_KEY: '', OPENAI_BASE_URL: '', CODECLM_CHECK_RETRY_SECONDS: '2', ...env },
    cwd: tmpDir('codeclm-check-cli-'),
  });
}

test('a working endpoint: each distinct (endpoint, model) is called once, with dialect and latency', async () => {
  const checks = await check(envFor());
  expect(checks.map((c) => c.roles)).toEqual([['strong', 'judge'], ['target']]);
  for (const c of checks) {
    expect(c).toMatchObject({ ok: true, reachable: 'yes', auth: 'ok', modelKnown: 'yes', calls: 1 });
    expect(c.dialect).toBe('json_schema');
    expect(c.latencyMs).toBeGreaterThanOrEqual(0);
  }
  // Two chat calls at the server, one per distinct model, nothing else.
  expect(sim.stats().byTask).toEqual({ codeclm_check: 2 });
});

test('an unknown model fails with 404 for that role only, and says the model is not listed', async () => {
  const checks = await check(envFor({ CODECLM_TARGET_MODEL: 'no-such-model' }));
  const target = checks.find((c) => c.roles.includes('target'))!;
  expect(target).toMatchObject({ ok: false, reachable: 'yes', auth: 'ok', modelKnown: 'no' });
  expect(target.problem).toContain('HTTP 404');
  expect(target.problem).toContain('does not exist');
  expect(checks.find((c) => c.roles.includes('strong'))!.ok).toBe(true);
});

test('a bad key fails auth at once (no retries), and the key is not echoed', async () => {
  const checks = await check(envFor({ OPENAI_API_KEY: 'sk-wrong-key-000000' }));
  for (const c of checks) {
    expect(c).toMatchObject({ ok: false, reachable: 'yes', auth: 'failed', modelKnown: 'unknown', calls: 1 });
    expect(c.problem).toContain('HTTP 401');
    expect(c.problem).not.toContain('sk-wrong-key-000000');
  }
});

test('nothing listening: unreachable after riding out the retry window', async () => {
  const port = await freePort();
  const started = Date.now();
  const checks = await check(envFor({ OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` }), 1500);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  for (const c of checks) {
    expect(c).toMatchObject({ ok: false, reachable: 'no', auth: 'unknown', modelKnown: 'unknown', calls: 0 });
    expect(c.problem).toMatch(/still failing after \d+ attempt\(s\).*failed to connect/);
  }
});

test('a 429, then OK: the check rides it out and counts both answers', async () => {
  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify([{ status: 429, retryAfterMs: 300, model: 'target-m' }]),
  });
  const checks = await check(envFor());
  const target = checks.find((c) => c.roles.includes('target'))!;
  expect(target).toMatchObject({ ok: true, calls: 2, dialect: 'json_schema' });
  expect(sim.stats().byStatus).toEqual({ '200': 2, '429': 1 });
});

test('codeclm check prints the table and exits 0; --json gives the same as data', async () => {
  const table = await cli(['check'], envFor());
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(
    /^role\s+endpoint\s+model\s+reachable\s+auth\s+model known\s+dialect\s+latency/,
  );
  expect(table.stdout).toMatch(
    /strong,judge\s+http:\/\/127\.0\.0\.1:\d+\/v1\s+strong-m\s+yes\s+ok\s+yes\s+json_schema\s+\d+ ms/,
  );
  const json = await cli(['check', '--json'], envFor());
  expect(json.code).toBe(0);
  const parsed = JSON.parse(json.stdout) as { ok: boolean; endpoints: EndpointCheck[] };
  expect(parsed.ok).toBe(true);
  expect(parsed.endpoints.map((e) => e.model)).toEqual(['strong-m', 'target-m']);
});

test('codeclm check exits 2 naming the failing role', async () => {
  const r = await cli(['check'], envFor({ CODECLM_TARGET_MODEL: 'no-such-model' }));
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(
    /codeclm check: role target \(model "no-such-model" at http:\/\/127\.0\.0\.1:\d+\/v1\): .*HTTP 404/,
  );
});

test('without any provider, check checks the offline simulator run would use', async () => {
  const r = await cli(['check'], {});
  expect(r.code).toBe(0);
  expect(r.stderr).toContain('checking the offline simulator');
  expect(r.stdout).toMatch(/strong,judge\s+http:\/\/127\.0\.0\.1:\d+\/v1\s+sim-strong\s+yes/);
});

describe('preflight', () => {
  const dir = tmpDir('codeclm-preflight-');
  const seeds = path.join(dir, 'seeds.jsonl');
  fs.writeFileSync(seeds, '{"instruction":"Write a haiku about rain."}\n');
  // No Temporal server here: a command that got past the check would fail to connect (exit 1).
  const noTemporal = { TEMPORAL_ADDRESS: '127.0.0.1:9' };

  test.each([
    ['run', ['run', '--seeds', seeds, '--out', path.join(dir, 'run-out')]],
    ['eval', ['eval', '--instructions', seeds, '--out', path.join(dir, 'eval-out')]],
    [
      'schedule create',
      ['schedule', 'create', 'nightly', '--every', '1d', '--seeds', seeds, '--out', path.join(dir, 's-out')],
    ],
  ])('%s exits 2 naming the role when its endpoint fails, and starts nothing', async (name, args) => {
    const r = await cli(args, { ...envFor({ OPENAI_API_KEY: 'sk-wrong-key-000000' }), ...noTemporal });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`codeclm ${name}: the endpoint check failed`);
    expect(r.stderr).toMatch(/role strong, judge \(model "strong-m" at .*HTTP 401/);
    expect(r.stderr).toMatch(/role target \(model "target-m" at .*HTTP 401/);
    expect(r.stderr).not.toMatch(/started \(out:/);
  });

  test('--no-check skips it (the run then gets as far as Temporal)', async () => {
    const r = await cli(['run', '--seeds', seeds, '--out', path.join(dir, 'nc-out'), '--no-check'], {
      ...envFor({ OPENAI_API_KEY: 'sk-wrong-key-000000' }),
      ...noTemporal,
    });
    expect(r.stderr).not.toContain('endpoint check');
    expect(r.code).toBe(1);
  });

  test('a passing check says what it found and how many calls it made', async () => {
    const r = await cli(['run', '--seeds', seeds, '--out', path.join(dir, 'ok-out')], {
      ...envFor(),
      ...noTemporal,
    });
    expect(r.stderr).toMatch(/codeclm: check ok: strong,judge "strong-m" at .*, dialect json_schema, \d+ ms/);
    expect(r.stderr).toContain('codeclm: check made 2 LLM call(s), not counted in the run report');
    expect(r.code).toBe(1);
  });
});
