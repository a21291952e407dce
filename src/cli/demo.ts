import path from 'node:path';
import { str, type Command } from './command';
import { runCommand } from './run';

/** `npm run demo`: the whole pipeline on the bundled example seeds with the embedded defaults. */
export const demoCommand: Command = {
  name: 'demo',
  summary:
    'run the pipeline on the bundled example seeds (embedded server; simulator without OPENAI_API_KEY)',
  usage: 'demo [--out DIR] [--size N]',
  options: { out: { type: 'string' }, size: { type: 'string' } },
  async run(args) {
    const seeds = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');
    const out = str(args, 'out') ?? 'demo-out';
    const code = await runCommand.run({
      values: { seeds, out, size: str(args, 'size') ?? '60' },
      positionals: [],
    });
    if (code === 0) {
      process.stdout.write(
        [
          '',
          'Demo finished. Look at:',
          `  ${path.resolve(out, 'dataset.jsonl')}   the kept instruction/response pairs`,
          `  ${path.resolve(out, 'report.md')}       what happened at each stage`,
          '',
        ].join('\n'),
      );
    }
    return code;
  },
};
