import { flag, intOpt, numOpt, type Command } from './command';
import { runChaos } from '../chaos/harness';

/** `codeclm chaos` (npm run chaos): the reliability harness of src/chaos/harness.ts. */
export const chaosCommand: Command = {
  name: 'chaos',
  summary:
    'run a generation under chaos (worker SIGKILLs, a server kill, provider faults) and check the dataset',
  usage:
    'chaos [--size N] [--workers W] [--seed S] [--seeds N] [--kill-every-ms MS] [--error-rate R] [--keep]',
  details: [
    '--size N            target kept pairs of the run (default 200)',
    '--workers W         `codeclm worker` processes (default 2)',
    '--seed S            seed of the kill schedule and the simulator (default 1)',
    '--seeds N           seed instructions (default max(32, size/2))',
    '--kill-every-ms MS  mean time between SIGKILLs (default 8000)',
    '--error-rate R      simulator error rate (429/500/503, default 0.05); malformed JSON 0.03',
    '--keep              keep the temp dir (server db, logs, out dir)',
    'Prints {kept, failed, lost, duplicates, worker_kills, server_kills, wall_s, ...} as JSON;',
    'exits 1 when anything was lost or duplicated, or the run did not complete.',
  ],
  options: {
    size: { type: 'string' },
    workers: { type: 'string' },
    seed: { type: 'string' },
    seeds: { type: 'string' },
    'kill-every-ms': { type: 'string' },
    'error-rate': { type: 'string' },
    keep: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args) {
    const summary = await runChaos({
      size: intOpt(args, 'size', chaosCommand) ?? 200,
      workers: intOpt(args, 'workers', chaosCommand) ?? 2,
      seed: intOpt(args, 'seed', chaosCommand, { min: 0 }) ?? 1,
      seeds: intOpt(args, 'seeds', chaosCommand),
      killEveryMs: intOpt(args, 'kill-every-ms', chaosCommand),
      errorRate: numOpt(args, 'error-rate', chaosCommand, { min: 0, max: 1 }),
      keep: flag(args, 'keep'),
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.lost === 0 && summary.duplicates === 0 && summary.state === 'completed' ? 0 : 1;
  },
};
