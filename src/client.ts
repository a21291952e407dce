#!/usr/bin/env node
/**
 * The codeclm CLI on commander. Each command lives in src/cli/<name>.ts (its options, help and run
 * function); this file builds the program from the registry and maps errors to exit codes.
 */
import { CommanderError } from 'commander';
import {
  CliCommand,
  DEV_TOOLS_GROUP,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  addCommand,
  exitCodeOf,
  type RunListener,
} from './cli/command';
import { InputError } from './util/errors';
import { commands } from './cli/registry';
import { installCliRuntime } from './temporal/logging';

/** The whole command tree; `listener` is told which command ran and its exit code. */
export function buildProgram(listener: RunListener): CliCommand {
  const program = new CliCommand('codeclm')
    .description('codeclm: tailored instruction-tuning data with the CodecLM method, on Temporal workflows')
    .usage('<command> [options]')
    .helpCommand('help [command]', 'help for a command')
    .addHelpText(
      'after',
      [
        '',
        '`codeclm <command> --help` shows the options of a command.',
        'Exit codes: 0 success, 1 failure, 2 bad usage or invalid input. `--json` puts machine output on stdout.',
        `${DEV_TOOLS_GROUP.replace(/:$/, '')} are for tests, benchmarks and operations, not for making data.`,
      ].join('\n'),
    );
  // Loggers and the Temporal runtime only for a command that runs (not for --help or a usage error).
  program.hook('preAction', () => installCliRuntime());
  for (const spec of commands) addCommand(program, spec, listener);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT_OK;
  let running = 'codeclm';
  const program = buildProgram({
    started: (path) => (running = path),
    finished: (c) => (code = c),
  });
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeOf(err);
    if (err instanceof UsageError || err instanceof InputError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`${running}: ${(err as Error).message ?? String(err)}\n`);
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
