import path from 'node:path';
import { intOption, type CommandSpec } from './command';
import { runCommand, runHoldingOut, type RunOptions } from './run';
import { joinLocation, resolveLocation } from '../store/store';

const DEFAULT_OUT = 'demo-out';

/** `npm run demo`: the whole pipeline on the bundled example seeds with the embedded defaults. */
export const demoCommand: CommandSpec<{ out?: string; size: number }> = {
  name: 'demo',
  summary:
    'run the pipeline on the bundled example seeds (embedded server; simulator without OPENAI_API_KEY)',
  options(cmd) {
    cmd
      .option(
        '--out <dir>',
        `where the dataset and report are written (or s3://bucket/prefix); default ${DEFAULT_OUT}, ` +
          `or ${DEFAULT_OUT}-2, -3, ... when it holds an earlier run`,
      )
      .addOption(intOption('--size <n>', 'target number of kept pairs').default(60));
  },
  async run({ out, size }) {
    const seeds = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');
    const options: RunOptions = { seeds, out: out ?? (await freeDemoOut()), size, check: true };
    const code = await runCommand.run!(options, []);
    if (code === 0) {
      process.stdout.write(
        [
          '',
          'Demo finished. Look at:',
          `  ${joinLocation(resolveLocation(options.out), 'dataset.jsonl')}   the kept instruction/response pairs`,
          `  ${joinLocation(resolveLocation(options.out), 'report.md')}       what happened at each stage`,
          '',
        ].join('\n'),
      );
    }
    return code;
  },
};

/**
 * The first of demo-out, demo-out-2, ... that holds no run: running the demo again keeps the
 * earlier output and writes beside it (an out dir holds one run; `run` refuses a second).
 */
async function freeDemoOut(): Promise<string> {
  const earlier = await runHoldingOut(DEFAULT_OUT);
  if (earlier === undefined) return DEFAULT_OUT;
  for (let n = 2; ; n++) {
    const out = `${DEFAULT_OUT}-${n}`;
    if ((await runHoldingOut(out)) !== undefined) continue;
    process.stderr.write(
      `codeclm: ${DEFAULT_OUT} holds an earlier run (${earlier}); this demo writes to ${out}.\n`,
    );
    return out;
  }
}
