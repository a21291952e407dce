import type { z } from 'zod';
import {
  DEFAULT_BATCH_SETTINGS,
  resolvedConfigSchema,
  roleSchema,
  type ConfigFile,
  type ResolvedConfig,
  type ResolvedRole,
  type RoleConfig,
  type RoleName,
} from '../schemas/config';
import { InputError } from '../util/errors';
import { formatIssues, pathString, type Path } from './issues';
import { readConfigFile } from './read';
import { checkedConfigSchema, crossFieldIssues } from './schema';

export { describeConfig, type ConfigSummary } from './describe';

/**
 * Loading and resolving the run config. Precedence for each role setting: the config file, then the
 * environment (OPENAI_BASE_URL, CODECLM_<ROLE>_MODEL), then built-in defaults. Keys never appear in
 * the config or in the resolved value: a role only names the env var (`apiKeyEnv`) that holds it,
 * and the worker reads it when it calls the model, so nothing secret reaches workflow history.
 */

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const DEFAULT_MODELS: Record<'strong' | 'target', string> = {
  strong: 'gpt-4o',
  target: 'gpt-4o-mini',
};
export const MODEL_ENV: Record<RoleName, string> = {
  strong: 'CODECLM_STRONG_MODEL',
  target: 'CODECLM_TARGET_MODEL',
  judge: 'CODECLM_JUDGE_MODEL',
};

export interface ConfigOverrides {
  /** `--size`: target number of kept pairs. */
  size?: number;
}

type Env = Record<string, string | undefined>;

export function loadConfig(
  file: string | undefined,
  env: Env = process.env,
  overrides: ConfigOverrides = {},
): ResolvedConfig {
  const { parsed, raw } =
    file === undefined ? { parsed: checkedConfigSchema.parse({}), raw: {} } : parseFile(file);
  const rawRoles = ((raw as { roles?: Record<string, unknown> }).roles ?? {}) as Record<
    string,
    Record<string, unknown> | undefined
  >;

  const baseURL = envBaseURL(env);
  const strong = resolveRole('strong', parsed.roles.strong, env, baseURL, DEFAULT_MODELS.strong);
  const target = resolveRole('target', parsed.roles.target, env, baseURL, DEFAULT_MODELS.target);
  const judge = resolveJudge(rawRoles.strong, rawRoles.judge, strong, env);

  const limits = { ...parsed.limits };
  if (overrides.size !== undefined) {
    if (!Number.isInteger(overrides.size) || overrides.size < 1) {
      throw new InputError(`--size: expected a positive integer, got ${String(overrides.size)}`);
    }
    limits.size = overrides.size;
  }
  const roles = { strong, target, judge };
  // A batch-mode call waits for its batch: its activity may run for the completion window + margin.
  const batchHours = Object.values(roles)
    .filter((r) => r.mode === 'batch' || Object.values(r.stageModes ?? {}).includes('batch'))
    .map((r) => 24 + (r.batch ?? DEFAULT_BATCH_SETTINGS).marginHours);
  if (batchHours.length && limits.llmActivityTimeoutMinutes === undefined)
    limits.llmActivityTimeoutMinutes = Math.max(...batchHours) * 60;
  const secretURLs = Object.entries(roles)
    .filter(([, r]) => urlCarriesSecret(r.baseURL))
    .map(
      ([name]) =>
        `roles.${name}.baseURL: credentials in the URL are not accepted (the URL goes into run history); put the key in the environment variable named by apiKeyEnv`,
    );
  if (secretURLs.length) throw new InputError(`${file ?? 'OPENAI_BASE_URL'}: invalid endpoint`, secretURLs);
  return resolvedConfigSchema.parse({
    roles,
    method: parsed.method,
    limits,
    cache: file === undefined ? undefined : parsed.cache,
  });
}

/** user:password@ or a key-like query parameter: such a URL would carry a secret into histories. */
function urlCarriesSecret(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const u = new URL(url);
  return (
    !!(u.username || u.password) || [...u.searchParams.keys()].some((k) => /key|token|secret|auth/i.test(k))
  );
}

function parseFile(file: string): { parsed: ConfigFile; raw: unknown } {
  const { raw, where } = readConfigFile(file);
  const keyProblems = findApiKeys(raw).map(
    (p) =>
      `${pathString(p)}: API keys are not accepted in config files (they would be copied into run history and reports); ` +
      `put the key in an environment variable and set "apiKeyEnv" to its name, e.g. "apiKeyEnv": "OPENAI_API_KEY"${where(p)}`,
  );
  const result = checkedConfigSchema.safeParse(raw);
  let issues: z.core.$ZodIssue[] = [];
  if (!result.success) {
    // Cross-field rules may not have run (zod skips refinements after some failures): run them on
    // the raw input, and drop any the refinement did produce so each is listed once.
    const crossField = crossFieldIssues((raw as { method?: unknown }).method ?? {}).map((i) => ({
      code: 'custom' as const,
      input: undefined,
      ...i,
    }));
    // Only those: a field's own refinement (an s3:// location, a spool directory) is a custom issue
    // too, and dropping every custom issue left "invalid config file (0 problems)" with no reason.
    const isCross = (i: z.core.$ZodIssue) =>
      crossField.some((c) => c.message === i.message && c.path.join('.') === i.path.join('.'));
    issues = [...result.error.issues.filter((i) => i.code !== 'custom' || !isCross(i)), ...crossField];
  }
  const problems = [...keyProblems, ...formatIssues(issues, raw, checkedConfigSchema, where, isApiKeyName)];
  if (problems.length || !result.success) {
    throw new InputError(
      `invalid config file ${file} (${problems.length} problem${problems.length === 1 ? '' : 's'}):`,
      problems,
    );
  }
  return { parsed: result.data, raw };
}

const isApiKeyName = (key: string): boolean => /^api[-_]?key$/i.test(key);

/** Every path, at any depth, whose key is an API key field. */
function findApiKeys(value: unknown, path: PropertyKey[] = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const found: Path[] = [];
  for (const [k, v] of Object.entries(value)) {
    const p = [...path, Array.isArray(value) ? Number(k) : k];
    if (isApiKeyName(k)) found.push(p);
    else found.push(...findApiKeys(v, p));
  }
  return found;
}

/** An env var counts only when non-blank: `FOO= cmd` should behave like FOO unset. */
function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function envBaseURL(env: Env): string {
  const v = envValue(env, 'OPENAI_BASE_URL');
  if (v === undefined) return DEFAULT_BASE_URL;
  if (!URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol)) {
    throw new InputError(
      `OPENAI_BASE_URL: expected an http(s) URL such as http://127.0.0.1:8000/v1, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function resolveRole(
  name: RoleName,
  role: RoleConfig,
  env: Env,
  baseURL: string,
  defaultModel: string,
): ResolvedRole {
  return {
    ...role,
    baseURL: role.baseURL ?? baseURL,
    model: role.model ?? envValue(env, MODEL_ENV[name]) ?? defaultModel,
  };
}

/**
 * The paper's judge is the strong LLM. Without a judge section the judge is a copy of the strong
 * role; with one, fields it leaves out are taken from the strong role too (so `judge: {model: x}`
 * means "same endpoint and key, other model"). Temperature is never inherited: the judge stage uses
 * method.judgeTemperature (0, as in the paper) unless the judge section sets one.
 */
function resolveJudge(
  rawStrong: Record<string, unknown> | undefined,
  rawJudge: Record<string, unknown> | undefined,
  strong: ResolvedRole,
  env: Env,
): ResolvedRole {
  const { temperature: _ignored, ...inherited } = rawStrong ?? {};
  void _ignored;
  const merged = roleSchema.parse({ ...inherited, ...(rawJudge ?? {}) });
  return {
    ...merged,
    baseURL: typeof rawJudge?.baseURL === 'string' ? merged.baseURL! : strong.baseURL,
    model:
      typeof rawJudge?.model === 'string' ? merged.model! : (envValue(env, MODEL_ENV.judge) ?? strong.model),
    temperature: typeof rawJudge?.temperature === 'number' ? merged.temperature : undefined,
  };
}
