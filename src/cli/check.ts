import { ApplicationFailure } from '@temporalio/common';
import type { CommandSpec } from './command';
import { sharedOptions, type ConfigOption, type JsonOption } from './options';
import { loadConfig } from '../config/load';
import { roleNames, type ResolvedConfig, type ResolvedRole, type RoleName } from '../schemas/config';
import { createLlmClient } from '../llm/client';
import { redact } from '../llm/errors';
import { LlmFailure } from '../llm/types';
import { checkTask } from '../tasks/check';
import { startSimulator } from '../sim/server';
import { simulatedRoles, wantsSimulator } from './offline';
import { InputError } from '../util/errors';

/**
 * `codeclm check`: one tiny structured call per distinct (endpoint, model, key) of the roles, before
 * any work is started on them. Transient faults (429, 5xx, connection resets) are retried for a few
 * seconds; what a retry cannot fix (unreachable, bad key, unknown model, a request the server
 * rejects) fails, naming the role. `run`, `eval` and `schedule create` run the same check first
 * (`preflight`), unless given --no-check.
 */
export interface EndpointCheck {
  roles: RoleName[];
  endpoint: string;
  model: string;
  reachable: 'yes' | 'no';
  auth: 'ok' | 'failed' | 'unknown';
  /** From GET /models: 'unknown' when the server has no such list (or would not give it). */
  modelKnown: 'yes' | 'no' | 'unknown';
  /** The structured-output dialect the client settled on (`usage.dialect`), else the configured mode. */
  dialect?: string;
  latencyMs?: number;
  /** Chat-completion requests this check sent that the server answered (for honest accounting). */
  calls: number;
  ok: boolean;
  problem?: string;
}

export interface CheckOptions {
  env?: NodeJS.ProcessEnv;
  /** How long transient faults are retried (default 10 s, or CODECLM_CHECK_RETRY_SECONDS). */
  retryWindowMs?: number;
}

/** Short enough for a CPU-bound local model; `{"ok": true}` is a handful of tokens. */
const CHECK_MAX_TOKENS = 128;
const CHECK_TIMEOUT_MS = 60_000;
const TRANSIENT: string[] = [LlmFailure.RateLimited, LlmFailure.Unavailable, LlmFailure.Connection];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Roles that share endpoint, model and key are one endpoint to check. */
export function endpointGroups(config: ResolvedConfig): { roles: RoleName[]; cfg: ResolvedRole }[] {
  const groups = new Map<string, { roles: RoleName[]; cfg: ResolvedRole }>();
  for (const role of roleNames) {
    const cfg = config.roles[role];
    const key = JSON.stringify([cfg.baseURL.replace(/\/+$/, ''), cfg.model, cfg.apiKeyEnv]);
    const group = groups.get(key);
    if (group) group.roles.push(role);
    else groups.set(key, { roles: [role], cfg });
  }
  return [...groups.values()];
}

async function listedModels(cfg: ResolvedRole, apiKey: string | undefined): Promise<string[] | undefined> {
  try {
    const res = await fetch(`${cfg.baseURL.replace(/\/+$/, '')}/models`, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { data?: { id?: unknown }[] };
    if (!Array.isArray(body.data)) return undefined;
    return body.data.map((m) => String(m.id));
  } catch {
    return undefined;
  }
}

function httpStatus(err: Error): number | undefined {
  const m = /\(HTTP (\d{3})\b/.exec(err.message);
  return m ? Number(m[1]) : undefined;
}

/** Usage a failure carried (invalid output reports the calls it made), if any. */
function failureCalls(err: ApplicationFailure): number | undefined {
  const details = err.details?.[0] as { usage?: { calls?: unknown } } | undefined;
  return typeof details?.usage?.calls === 'number' ? details.usage.calls : undefined;
}

async function checkOne(
  roles: RoleName[],
  cfg: ResolvedRole,
  env: NodeJS.ProcessEnv,
  windowMs: number,
): Promise<EndpointCheck> {
  const apiKey = env[cfg.apiKeyEnv] || undefined;
  const endpoint = redact(cfg.baseURL, apiKey ? [apiKey] : []);
  const base = { roles, endpoint, model: cfg.model };
  const listed = await listedModels(cfg, apiKey);
  const modelKnown = listed === undefined ? 'unknown' : listed.includes(cfg.model) ? 'yes' : 'no';
  const client = createLlmClient(
    roles[0]!,
    {
      ...cfg,
      maxTokens: Math.min(cfg.maxTokens, CHECK_MAX_TOKENS),
      timeoutMs: Math.min(cfg.timeoutMs, CHECK_TIMEOUT_MS),
    },
    env,
    { repairAttempts: 1 },
  );
  const deadline = Date.now() + windowMs;
  let calls = 0;
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    try {
      const result = await client.structured(checkTask, {}, { temperature: 0, label: 'codeclm check' });
      calls += result.usage.calls;
      const dialect = result.usage.dialect ?? cfg.structuredOutput;
      return {
        ...base,
        reachable: 'yes',
        auth: 'ok',
        modelKnown,
        dialect,
        latencyMs: Date.now() - started,
        calls,
        ok: true,
      };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const type = err instanceof ApplicationFailure ? (err.type ?? '') : '';
      const status = httpStatus(err);
      const fromFailure = err instanceof ApplicationFailure ? failureCalls(err) : undefined;
      calls += fromFailure ?? (status !== undefined ? 1 : 0);
      const retryable = err instanceof ApplicationFailure && !err.nonRetryable && TRANSIENT.includes(type);
      const wait =
        err instanceof ApplicationFailure && typeof err.nextRetryDelay === 'number'
          ? err.nextRetryDelay
          : Math.min(500 * 2 ** (attempt - 1), 4000);
      if (retryable && Date.now() + wait < deadline) {
        await sleep(wait);
        continue;
      }
      const still = retryable
        ? `still failing after ${attempt} attempt(s) in ${Math.round(windowMs / 1000)} s: `
        : '';
      const problem = `${still}${err.message}`;
      if (type === LlmFailure.Connection)
        return { ...base, reachable: 'no', auth: 'unknown', modelKnown, calls, ok: false, problem };
      const auth = status === 401 || status === 403 ? 'failed' : 'ok';
      const known =
        status === 404 && modelKnown === 'unknown' ? 'unknown' : status === 404 ? 'no' : modelKnown;
      return {
        ...base,
        reachable: 'yes',
        auth: status === undefined && retryable ? 'unknown' : auth,
        modelKnown: known,
        calls,
        ok: false,
        problem,
      };
    }
  }
}

export async function checkEndpoints(
  config: ResolvedConfig,
  opts: CheckOptions = {},
): Promise<EndpointCheck[]> {
  const env = opts.env ?? process.env;
  const windowMs = opts.retryWindowMs ?? Number(env.CODECLM_CHECK_RETRY_SECONDS ?? 10) * 1000;
  // One after another: a local server serves one request at a time anyway, and latency stays honest.
  const out: EndpointCheck[] = [];
  for (const g of endpointGroups(config)) out.push(await checkOne(g.roles, g.cfg, env, windowMs));
  return out;
}

export function renderChecks(checks: EndpointCheck[]): string {
  const header = ['role', 'endpoint', 'model', 'reachable', 'auth', 'model known', 'dialect', 'latency'];
  const rows = checks.map((c) => [
    c.roles.join(','),
    c.endpoint,
    c.model,
    c.reachable,
    c.auth,
    c.modelKnown,
    c.dialect ?? '-',
    c.latencyMs === undefined ? '-' : `${c.latencyMs} ms`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...rows.map(line)];
  for (const c of checks.filter((x) => !x.ok)) lines.push(`FAILED ${describeFailure(c)}`);
  return lines.join('\n');
}

export function describeFailure(c: EndpointCheck): string {
  return `role ${c.roles.join(', ')} (model "${c.model}" at ${c.endpoint}): ${c.problem ?? 'failed'}`;
}

/**
 * The check `run`, `eval` and `schedule create` make before starting anything. A failure is an
 * InputError (exit 2) naming the role. The check's own calls are printed, since they are not part
 * of the run's report.
 */
export async function preflight(
  config: ResolvedConfig,
  command: string,
  opts: CheckOptions & { hasConfigFile: boolean },
): Promise<EndpointCheck[]> {
  if (wantsSimulator(opts.hasConfigFile, opts.env ?? process.env)) {
    process.stderr.write(`codeclm: check skipped: the offline simulator is used (it speaks json_schema)\n`);
    return [];
  }
  const checks = await checkEndpoints(config, opts);
  const calls = checks.reduce((n, c) => n + c.calls, 0);
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) {
    throw new InputError(
      `codeclm ${command}: the endpoint check failed (nothing was started; --no-check skips the check)`,
      failed.map(describeFailure),
    );
  }
  for (const c of checks) {
    process.stderr.write(
      `codeclm: check ok: ${c.roles.join(',')} "${c.model}" at ${c.endpoint}, dialect ${c.dialect}, ${c.latencyMs} ms\n`,
    );
  }
  process.stderr.write(`codeclm: check made ${calls} LLM call(s), not counted in the ${command} report\n`);
  return checks;
}

export const checkCommand: CommandSpec<ConfigOption & JsonOption> = {
  name: 'check',
  summary:
    "call each role's endpoint once and report reachability, auth, model, structured-output dialect, latency",
  options(cmd) {
    cmd
      .addOption(
        sharedOptions.config(
          'codeclm.config.json or .yaml (else OPENAI_BASE_URL, CODECLM_<ROLE>_MODEL and defaults)',
        ),
      )
      .addOption(sharedOptions.json('print the results as JSON on stdout'));
  },
  help: [
    'Roles with the same endpoint, model and key are called once. 429s, 5xx and connection resets are',
    'retried for CODECLM_CHECK_RETRY_SECONDS (default 10); exit 2 names each role that does not work.',
    'Without OPENAI_API_KEY, OPENAI_BASE_URL or --config: checks the offline simulator (as run and eval would use it).',
    '`run`, `eval` and `schedule create` make the same check first; --no-check skips it.',
  ],
  run: checkMain,
};

async function checkMain(options: ConfigOption & JsonOption): Promise<number> {
  const file = options.config;
  let config = loadConfig(file, process.env);
  let sim: Awaited<ReturnType<typeof startSimulator>> | undefined;
  if (wantsSimulator(!!file)) {
    sim = await startSimulator({ seed: Number(process.env.CODECLM_SIM_SEED ?? 1) });
    config = simulatedRoles(config, sim.url);
    process.stderr.write(
      'codeclm: no provider configured: checking the offline simulator that run and eval would use\n',
    );
  }
  try {
    const checks = await checkEndpoints(config);
    const ok = checks.every((c) => c.ok);
    if (options.json) process.stdout.write(`${JSON.stringify({ ok, endpoints: checks })}\n`);
    else process.stdout.write(`${renderChecks(checks)}\n`);
    if (!ok)
      for (const c of checks.filter((x) => !x.ok))
        process.stderr.write(`codeclm check: ${describeFailure(c)}\n`);
    return ok ? 0 : 2;
  } finally {
    await sim?.close();
  }
}
