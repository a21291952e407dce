import path from 'node:path';
import {
  configSchema,
  resolvedRoleSchema,
  type ResolvedConfig,
  type ResolvedRole,
} from '../../src/schemas/config';
import type { RunInput } from '../../src/schemas/run';

/**
 * Config and input builders: paper defaults (the zod schemas' defaults) with roles pointed at a
 * simulator, so a test states only what it is about.
 */

/** The example seed file (examples/seeds.jsonl). */
export const exampleSeeds = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');

/** One role at a simulator URL, keyed by CODECLM_TEST_KEY; model `sim-strong` unless `over` says. */
export function simRole(baseURL: string, over: Partial<ResolvedRole> = {}): ResolvedRole {
  return resolvedRoleSchema.parse({ baseURL, model: 'sim-strong', apiKeyEnv: 'CODECLM_TEST_KEY', ...over });
}

/** A run's input: the example seeds unless `seedsFile` is given, on the test worker's task queue. */
export function simRunInput(opts: {
  runId: string;
  outDir: string;
  config: ResolvedConfig;
  taskQueue: string;
  seedsFile?: string;
}): RunInput {
  return { seedsFile: exampleSeeds, skipInvalid: false, ...opts };
}

/** A resolved config pointing every role at a simulator URL, paper defaults unless overridden. */
export function simConfig(
  baseURL: string,
  patch: { method?: Partial<ResolvedConfig['method']>; limits?: Partial<ResolvedConfig['limits']> } = {},
): ResolvedConfig {
  const base = configSchema.parse({});
  const role = (model: string) => ({ ...base.roles.strong, baseURL, model });
  return {
    roles: {
      strong: role('sim-strong'),
      target: role('sim-target'),
      judge: { ...role('sim-strong'), temperature: 0 },
    },
    method: { ...base.method, ...patch.method },
    limits: { ...base.limits, ...patch.limits },
  };
}

/**
 * Batch settings for tests on the simulator: small batches flushed after 0.25 s and polled every
 * 0.2-0.5 s, so a batch turns around in about a second instead of minutes.
 */
export const fastBatchSettings: NonNullable<ResolvedRole['batch']> = {
  maxRequests: 200,
  maxBytes: 1_000_000,
  maxWaitSeconds: 0.25,
  completionWindow: '24h',
  marginHours: 2,
  maxResubmits: 3,
  pollSeconds: 0.2,
  maxPollSeconds: 0.5,
  runCheckSeconds: 1,
};
