#!/usr/bin/env node
/**
 * The codeclm CLI. Each command lives in src/cli/<name>.ts; this file only dispatches and maps
 * errors to exit codes.
 */
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  helpText,
  parseCommandArgs,
  type Command,
} from './cli/command';
import { InputError } from './util/errors';
import { commands } from './cli/registry';
import { installCliRuntime } from './temporal/logging';

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'codeclm: tailored instruction-tuning data with the CodecLM method, on Temporal workflows',
    '',
    'usage: codeclm <command> [options]     (codeclm <command> --help for its options)',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name ? EXIT_OK : EXIT_USAGE;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`codeclm: unknown command "${name}"\n\n${mainHelp()}\n`);
    return EXIT_USAGE;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args.values.help) {
      process.stdout.write(`${helpText(command)}\n`);
      return EXIT_OK;
    }
    installCliRuntime();
    return (await command.run(args)) ?? EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError || err instanceof InputError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`codeclm ${name}: ${(err as Error).message ?? String(err)}\n`);
    if (process.env.CODECLM_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return EXIT_FAILURE;
  }
}

if (
  require.main === module ||
  process.argv[1]?.endsWith('codeclm.js') ||
  process.argv[1]?.endsWith('codeclm')
) {
  // Exit explicitly: the Temporal runtime and gRPC channels would otherwise keep the process alive
  // after the command is done (stdout and stderr are synchronous for files and pipes on Linux).
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`codeclm: ${String(err)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
