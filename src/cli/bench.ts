import { flag, UsageError, type Command } from './command';
import { describeTemporalCli, runBench } from '../../bench/bench';

/**
 * `codeclm bench`: saturation, overhead, ceiling and efficiency on the offline simulator, in one
 * process with its own Temporal dev server (bench/bench.ts; results and analysis in bench/RESULTS.md).
 */
export const benchCommand: Command = {
  name: 'bench',
  summary:
    'measure rate-limit saturation, the cost of durability, the orchestration ceiling and calls per kept pair',
  usage: 'bench [--quick] [--json] [--untuned]',
  details: [
    'Runs on the offline simulator and a Temporal dev server of its own (free port, temporary state).',
    'saturation  simulator capped at 600 rpm with ~1 s latency, the roles limited to the same: achieved rpm / cap, share of 429s',
    'overhead    the same stage functions in a plain in-process async pool vs the durable pipeline, side by side, ~1 s latency',
    'ceiling     zero latency: LLM calls/s through Temporal, server and worker CPU seconds per 1,000 calls, the pool beside it',
    'efficiency  LLM calls and tokens per kept pair, per stage',
    '--quick     a ~2 minute version (smaller runs, shorter windows); the full run takes about 8 minutes',
    '--json      print one JSON object {saturation, overhead, ceiling, efficiency} on stdout (progress on stderr)',
    '--untuned   the "before" configuration: no client-side limiter or adaptive concurrency, workflows bundled at worker start',
  ],
  options: {
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    untuned: { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length)
      throw new UsageError(
        `codeclm bench: unexpected argument "${args.positionals[0]}"\nusage: codeclm ${benchCommand.usage}`,
      );
    await describeTemporalCli();
    const report = await runBench({ quick: flag(args, 'quick'), untuned: flag(args, 'untuned') });
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      const {
        saturation: s,
        overhead: o,
        ceiling: c,
      } = report as unknown as {
        saturation: { achievedOverCap: number; fraction429: number; achievedRpm: number; capRpm: number };
        overhead: {
          durableOverInProcess: number;
          inProcess: { pairsPerSecond: number };
          durable: { pairsPerSecond: number };
        };
        ceiling: {
          durable: {
            callsPerSecond: number;
            serverCpuSecondsPer1000Calls: number;
            workerCpuSecondsPer1000Calls: number;
          };
          inProcess: { callsPerSecond: number };
        };
      };
      process.stdout.write(
        [
          `saturation  ${s.achievedRpm} of ${s.capRpm} rpm (${s.achievedOverCap}), 429s ${(s.fraction429 * 100).toFixed(2)}%`,
          `overhead    durable ${o.durable.pairsPerSecond} vs in-process ${o.inProcess.pairsPerSecond} pairs/s (${o.durableOverInProcess})`,
          `ceiling     durable ${c.durable.callsPerSecond} calls/s (server ${c.durable.serverCpuSecondsPer1000Calls} s, worker ${c.durable.workerCpuSecondsPer1000Calls} s CPU per 1,000 calls); in-process ${c.inProcess.callsPerSecond} calls/s`,
          `efficiency  ${JSON.stringify(report.efficiency)}`,
          '',
        ].join('\n'),
      );
    }
  },
};
