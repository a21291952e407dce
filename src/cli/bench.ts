import { checkedOption, type CommandSpec } from './command';
import { sharedOptions, type JsonOption } from './options';
import { BENCH_SECTIONS, describeTemporalCli, runBench, type BenchSection } from '../../bench/bench';
import { renderCost, type CostReport } from '../../bench/cost';

/**
 * `codeclm bench`: saturation, overhead, ceiling and efficiency on the offline simulator, in one
 * process with its own Temporal dev server (bench/bench.ts; results and analysis in bench/RESULTS.md).
 */
interface BenchOptions extends JsonOption {
  quick?: boolean;
  untuned?: boolean;
  peers?: boolean;
  only?: BenchSection[];
}

export const benchCommand: CommandSpec<BenchOptions> = {
  name: 'bench',
  summary:
    'measure rate-limit saturation, the cost of durability, the orchestration ceiling and calls per kept pair',
  devTool: true,
  options(cmd) {
    cmd
      .option(
        '--quick',
        'a ~3 minute version (smaller runs, shorter windows); the full run takes about 11 minutes',
      )
      .addOption(
        sharedOptions.json(
          'print one JSON object {saturation, overhead, ceiling, efficiency} on stdout (progress on stderr)',
        ),
      )
      .option(
        '--untuned',
        'the "before" configuration: no client-side limiter or adaptive concurrency, workflows bundled at worker start',
      )
      .option(
        '--peers',
        "also replay the saturation run's requests through Curator (bespokelabs-curator, pinned, installed into a " +
          'venv under the codeclm cache on first use; needs python3) on a fresh simulator, both rows side by side',
      )
      .addOption(
        checkedOption(
          '--only <sections>',
          'comma-separated sections to run (saturation, overhead, ceiling, cost; efficiency comes with overhead)',
          (value) => {
            const only = value.split(',').map((x) => x.trim());
            const known = (x: string): x is BenchSection => (BENCH_SECTIONS as readonly string[]).includes(x);
            return only.length && only.every(known)
              ? { ok: true, value: only }
              : { ok: false, expected: `a comma-separated list of ${BENCH_SECTIONS.join(', ')}` };
          },
        ),
      );
  },
  help: [
    'Runs on the offline simulator and a Temporal dev server of its own (free port, temporary state).',
    'saturation  simulator capped at 600 rpm with ~1 s latency, the roles limited to the same: achieved rpm / cap, share of 429s',
    'overhead    the same stage functions in a plain in-process async pool vs the durable pipeline, side by side, ~1 s latency',
    'ceiling     zero latency: LLM calls/s through Temporal, server and worker CPU seconds per 1,000 calls, the pool beside it',
    'efficiency  LLM calls and tokens per kept pair, per stage',
    "cost        the same run online and with answers and judging through the Batch API, at the simulator's prices (batch half): cost per kept pair and wall time of each",
  ],
  async run(options) {
    await describeTemporalCli();
    const report = await runBench({
      quick: !!options.quick,
      untuned: !!options.untuned,
      peers: !!options.peers,
      only: options.only,
    });
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(`${renderBench(report as Record<string, unknown>)}\n`);
    }
  },
};

interface SatRowView {
  achievedOverCap: number;
  fraction429: number;
  achievedRpm: number;
  capRpm: number;
  busiestMinute?: number;
  requests: number;
}

/** The human-readable summary: one line per section that ran, the peers side by side. */
export function renderBench(report: Record<string, unknown>): string {
  const lines: string[] = [];
  const s = report.saturation as SatRowView | undefined;
  if (s)
    lines.push(
      `saturation  ${s.achievedRpm} of ${s.capRpm} rpm (${s.achievedOverCap}), 429s ${(s.fraction429 * 100).toFixed(2)}%, busiest minute ${s.busiestMinute}`,
    );
  const p = report.peers as
    { rows: Record<string, SatRowView>; codeclmOverCurator: Record<string, unknown> } | undefined;
  if (p) {
    lines.push('peers       same load, same simulator settings, same run:');
    lines.push(
      `            ${'tool'.padEnd(16)}${'share of cap'.padEnd(14)}${'429 share'.padEnd(12)}busiest minute`,
    );
    for (const [name, r] of Object.entries(p.rows))
      lines.push(
        `            ${name.padEnd(16)}${String(r.achievedOverCap).padEnd(14)}${`${(r.fraction429 * 100).toFixed(2)}%`.padEnd(12)}${r.busiestMinute}`,
      );
    const c = p.codeclmOverCurator;
    lines.push(
      `            codeclm / curator: share ${c.shareOfCap}, busiest minute ${c.busiestMinute}; curator / codeclm 429 share: ${c.fraction429}`,
    );
  }
  const o = report.overhead as
    | {
        durableOverInProcess: number;
        inProcess: { pairsPerSecond: number };
        durable: { pairsPerSecond: number };
      }
    | undefined;
  if (o)
    lines.push(
      `overhead    durable ${o.durable.pairsPerSecond} vs in-process ${o.inProcess.pairsPerSecond} pairs/s (${o.durableOverInProcess})`,
    );
  const c = report.ceiling as
    | {
        durable: {
          callsPerSecond: number;
          serverCpuSecondsPer1000Calls: number;
          workerCpuSecondsPer1000Calls: number;
        };
        inProcess: { callsPerSecond: number };
      }
    | undefined;
  if (c)
    lines.push(
      `ceiling     durable ${c.durable.callsPerSecond} calls/s (server ${c.durable.serverCpuSecondsPer1000Calls} s, worker ${c.durable.workerCpuSecondsPer1000Calls} s CPU per 1,000 calls); in-process ${c.inProcess.callsPerSecond} calls/s`,
    );
  if (report.efficiency) lines.push(`efficiency  ${JSON.stringify(report.efficiency)}`);
  if (report.cost) lines.push(...renderCost(report.cost as CostReport));
  return lines.join('\n');
}
