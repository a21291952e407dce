import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * The CLI's command contract. Exit codes (the README): 0 success, 1 failure, 2 bad usage or
 * invalid input. Human output by default; `--json` puts machine output on stdout, and logs and
 * progress always go to stderr.
 */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** e.g. "run --seeds FILE --out DIR [--config FILE]" */
  usage: string;
  /** Lines shown under `--help` after the usage. */
  details?: string[];
  options: OptionSpec;
  run(args: ParsedArgs): Promise<number | void>;
}

/** Bad usage or invalid input: exit code 2, message printed as is. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (err) {
    throw new UsageError(
      `codeclm ${command.name}: ${(err as Error).message}\nusage: codeclm ${command.usage}`,
    );
  }
}

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function requireStr(args: ParsedArgs, name: string, command: Command): string {
  const v = str(args, name);
  if (!v)
    throw new UsageError(`codeclm ${command.name}: --${name} is required\nusage: codeclm ${command.usage}`);
  return v;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** A positive integer flag, or a usage error naming the flag. */
export function intOpt(
  args: ParsedArgs,
  name: string,
  command: Command,
  opts: { min?: number } = {},
): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  const min = opts.min ?? 1;
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`codeclm ${command.name}: --${name} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

export function numOpt(
  args: ParsedArgs,
  name: string,
  command: Command,
  opts: { min?: number; max?: number } = {},
): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (
    !Number.isFinite(n) ||
    (opts.min !== undefined && n < opts.min) ||
    (opts.max !== undefined && n > opts.max)
  ) {
    const range = [
      opts.min !== undefined ? `>= ${opts.min}` : '',
      opts.max !== undefined ? `<= ${opts.max}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(`codeclm ${command.name}: --${name} must be a number ${range}, got "${v}"`);
  }
  return n;
}

export function helpText(command: Command): string {
  const lines = [`usage: codeclm ${command.usage}`, '', command.summary];
  if (command.details?.length) lines.push('', ...command.details);
  return lines.join('\n');
}
