import { Option } from 'commander';
import { intOption, numberOption, type CommandSpec } from './command';
import { runChaos } from '../chaos/harness';

/** `codeclm chaos` (npm run chaos): the reliability harness of src/chaos/harness.ts. */
interface ChaosOptions {
  size: number;
  workers: number;
  seed: number;
  seeds?: number;
  killEveryMs?: number;
  errorRate?: number;
  keep?: boolean;
}

export const chaosCommand: CommandSpec<ChaosOptions> = {
  name: 'chaos',
  summary:
    'run a generation under chaos (worker SIGKILLs, a server kill, provider faults) and check the dataset',
  devTool: true,
  options(cmd) {
    cmd
      .addOption(intOption('--size <n>', 'target kept pairs of the run').default(200))
      .addOption(intOption('--workers <w>', '`codeclm worker` processes').default(2))
      .addOption(
        intOption('--seed <s>', 'seed of the kill schedule and the simulator', { min: 0 }).default(1),
      )
      .addOption(intOption('--seeds <n>', 'seed instructions (default max(32, size/2))'))
      .addOption(intOption('--kill-every-ms <ms>', 'mean time between SIGKILLs (default 8000)'))
      .addOption(
        numberOption(
          '--error-rate <r>',
          'simulator error rate (429/500/503, default 0.05); malformed JSON 0.03',
          {
            min: 0,
            max: 1,
          },
        ),
      )
      .option('--keep', 'keep the temp dir (server db, logs, out dir)')
      // Accepted for symmetry with the other commands: the summary is always JSON.
      .addOption(new Option('--json').hideHelp());
  },
  help: [
    'Prints {kept, failed, lost, duplicates, worker_kills, server_kills, wall_s, ...} as JSON;',
    'exits 1 when anything was lost or duplicated, or the run did not complete.',
  ],
  async run(options) {
    const summary = await runChaos({
      size: options.size,
      workers: options.workers,
      seed: options.seed,
      seeds: options.seeds,
      killEveryMs: options.killEveryMs,
      errorRate: options.errorRate,
      keep: !!options.keep,
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.lost === 0 && summary.duplicates === 0 && summary.state === 'completed' ? 0 : 1;
  },
};
