import type { ResolvedConfig, ResolvedRole } from '../schemas/config';
import { startSimulator } from '../sim/server';

/**
 * With no LLM provider configured at all (no OPENAI_API_KEY, no OPENAI_BASE_URL, no config file),
 * runs use the offline simulator, and say so loudly: its output is test data, not model output.
 */
export const SIMULATOR_BANNER = [
  '==========================================================================',
  ' codeclm: no OPENAI_API_KEY, OPENAI_BASE_URL or --config given.',
  ' Using the OFFLINE LLM SIMULATOR (codeclm sim-llm). It is not a model: the',
  ' data it produces only exercises the pipeline. Set OPENAI_API_KEY (and',
  ' OPENAI_BASE_URL for other OpenAI-compatible servers) for real data.',
  '==========================================================================',
].join('\n');

export function wantsSimulator(hasConfigFile: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return !hasConfigFile && !env.OPENAI_API_KEY && !env.OPENAI_BASE_URL;
}

export function simulatedRoles(
  config: ResolvedConfig,
  baseURL: string,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConfig {
  const role = (r: ResolvedRole, model: string): ResolvedRole => ({ ...r, baseURL, model });
  return {
    ...config,
    roles: {
      strong: role(config.roles.strong, env.CODECLM_STRONG_MODEL ?? 'sim-strong'),
      target: role(config.roles.target, env.CODECLM_TARGET_MODEL ?? 'sim-target'),
      judge: role(config.roles.judge, env.CODECLM_JUDGE_MODEL ?? env.CODECLM_STRONG_MODEL ?? 'sim-strong'),
    },
  };
}

export async function useSimulatorIfNoProvider(
  config: ResolvedConfig,
  hasConfigFile: boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ config: ResolvedConfig; stop(): Promise<void> }> {
  if (!wantsSimulator(hasConfigFile, env)) return { config, stop: async () => undefined };
  process.stderr.write(`${SIMULATOR_BANNER}\n`);
  // A fixed port, so a run resumed later (or by a detached process) finds the simulator again.
  const port = Number(env.CODECLM_SIM_PORT ?? 8787);
  const sim = await startSimulator({ port, seed: Number(env.CODECLM_SIM_SEED ?? 1) }).catch(
    async (err: Error) => {
      if (/EADDRINUSE/.test(err.message)) {
        process.stderr.write(
          `codeclm: port ${port} is busy; assuming a codeclm simulator is already there\n`,
        );
        return { url: `http://127.0.0.1:${port}/v1`, close: async () => undefined };
      }
      throw err;
    },
  );
  return { config: simulatedRoles(config, sim.url, env), stop: () => sim.close() };
}
