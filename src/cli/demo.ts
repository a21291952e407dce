import path from 'node:path';
import { intOption, type CommandSpec } from './command';
import { runCommand, type RunOptions } from './run';
import { joinLocation, resolveLocation } from '../store/store';

/** `npm run demo`: the whole pipeline on the bundled example seeds with the embedded defaults. */
export const demoCommand: CommandSpec<{ out: string; size: number }> = {
  name: 'demo',
  summary:
    'run the pipeline on the bundled example seeds (embedded server; simulator without OPENAI_API_KEY)',
  options(cmd) {
    cmd
      .option('--out <dir>', 'where the dataset and report are written (or s3://bucket/prefix)', 'demo-out')
      .addOption(intOption('--size <n>', 'target number of kept pairs').default(60));
  },
  async run({ out, size }) {
    const seeds = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');
    const options: RunOptions = { seeds, out, size, check: true };
    const code = await runCommand.run!(options, []);
    if (code === 0) {
      process.stdout.write(
        [
          '',
          'Demo finished. Look at:',
          `  ${joinLocation(resolveLocation(out), 'dataset.jsonl')}   the kept instruction/response pairs`,
          `  ${joinLocation(resolveLocation(out), 'report.md')}       what happened at each stage`,
          '',
        ].join('\n'),
      );
    }
    return code;
  },
};
