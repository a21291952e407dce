import type { CommandSpec } from './command';
import { sharedOptions, type JsonOption } from './options';
import type { RunInputOptions } from './run';
import { loadConfig } from '../config/load';
import type { ResolvedConfig } from '../schemas/config';
import { makePlan, writeRunPlan } from '../plan/make';
import { prefetchRemoteInputs as prefetchSeeds } from '../seeds/load';
import type { RunInput } from '../schemas/run';
import { renderPlan } from '../plan/render';
import type { Plan } from '../plan/estimate';
import { simulatedRoles, wantsSimulator } from './offline';

type PlanOptions = Pick<RunInputOptions, 'seeds' | 'config' | 'size' | 'field' | 'skipInvalid'> & JsonOption;

export const planCommand: CommandSpec<PlanOptions> = {
  name: 'plan',
  summary: 'before any call: expected LLM calls, tokens, cost and wall time of a run, per stage and role',
  options(cmd) {
    cmd
      .addOption(sharedOptions.seeds('the seed file the run would use (validated as `run` validates it)'))
      .addOption(
        sharedOptions.config('codeclm.config.json or .yaml (method parameters, limits, rpm/tpm, prices)'),
      )
      .addOption(sharedOptions.size())
      .addOption(sharedOptions.field())
      .addOption(sharedOptions.skipInvalid())
      .addOption(sharedOptions.json('print the plan as JSON on stdout'));
  },
  help: [
    'Keep rates, tokens per call and repairs are measured on earlier completed runs of this machine',
    "with the same models and theta (CODECLM_HOME/history/runs.jsonl); without any, the bench's",
    'figures are used, and the output says which.',
  ],
  run: planMain,
};

async function planMain(options: PlanOptions): Promise<number> {
  const config = loadConfig(options.config, process.env, { size: options.size });
  // `--seeds s3://...`: fetched first, as `run` does (a missing object is an input error, exit 2).
  await prefetchSeeds([options.seeds]);
  const plan = planBeforeStart(options.seeds, plannedConfig(config, !!options.config), {
    field: options.field,
    skipInvalid: !!options.skipInvalid,
  });
  printPlan(plan, !!options.json);
  return 0;
}

/**
 * The config a run would really use: without any provider, `run` answers with the offline
 * simulator, whose model names are what earlier simulator runs were recorded under.
 */
export function plannedConfig(config: ResolvedConfig, hasConfigFile: boolean): ResolvedConfig {
  return wantsSimulator(hasConfigFile) ? simulatedRoles(config, 'http://127.0.0.1/v1') : config;
}

export function planBeforeStart(
  seedsFile: string,
  config: ResolvedConfig,
  opts: { field?: string; skipInvalid?: boolean; runId?: string },
  how: { quiet?: boolean } = {},
): Plan {
  const { plan, warnings } = makePlan({
    seedsFile,
    config,
    field: opts.field,
    skipInvalid: opts.skipInvalid,
    runId: opts.runId,
  });
  // `run` has printed the seed file's warnings already.
  if (!how.quiet) for (const w of warnings) process.stderr.write(`codeclm: warning: ${w}\n`);
  return plan;
}

/**
 * plan.json in the run's out dir, before the workflow starts (client side: the history it reads is
 * this machine's). A plan that cannot be made never stops the run; the report then has no comparison.
 */
export async function writePlanForRun(input: RunInput): Promise<void> {
  try {
    await writeRunPlan(input.outDir, planBeforeStart(input.seedsFile, input.config, input, { quiet: true }));
  } catch (err) {
    process.stderr.write(`codeclm: warning: no plan.json for this run: ${(err as Error).message}\n`);
  }
}

export function printPlan(plan: Plan, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(plan)}\n` : renderPlan(plan));
}
