import { Command as Commander, CommanderError, Option } from 'commander';

/**
 * The CLI's command contract, on commander. Exit codes (INTERFACE.md): 0 success, 1 failure, 2 bad
 * usage or invalid input. Human output by default; `--json` puts machine output on stdout, and logs
 * and progress always go to stderr. Each command module declares its options once (with their help)
 * and gets them back parsed and typed; help text and parse errors come from commander.
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad usage or invalid input: exit code 2, message printed as is. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The `codeclm --help` section of the developer tools (tests, benchmarks, provisioning). */
export const DEV_TOOLS_GROUP = 'Developer tools:';

/** A codeclm command or subcommand: its name, options, help, and what it runs. */
export interface CommandSpec<O = Record<string, unknown>> {
  name: string;
  /** One line, shown in the parent's command list and at the top of the command's own help. */
  summary: string;
  /** A developer tool (simulator, bench, chaos, provisioning): listed apart from the product's commands. */
  devTool?: boolean;
  /** Positional arguments in commander's syntax, e.g. '<RUN_ID>'. */
  args?: string;
  /** Declares the command's options, each once with its help. */
  options?(cmd: Commander): void;
  /** Paragraphs shown under --help after the options (what the options cannot say). */
  help?: string[];
  /** Subcommands (`schedule create`, `cache stats`); a command has these or `run`. */
  subcommands?: CommandSpec<never>[];
  /** The command itself, with the parsed options and positional arguments. */
  run?(options: O, args: string[]): Promise<number | void>;
}

/** An option value commander could not accept (a bad number, an unknown choice): exit 2 naming the flag. */
class OptionValueError extends Error {}

/**
 * commander's Command with codeclm's error handling: every parse error (unknown flag, missing value,
 * bad number, missing argument, unknown command) becomes a UsageError naming the command, the flag
 * and the usage line, instead of commander printing and exiting by itself.
 */
export class CliCommand extends Commander {
  constructor(name?: string) {
    super(name);
    this.exitOverride();
  }

  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  /** The first unknown flag of the last parse: commander checks required options before it. */
  private unknownFlag: string | undefined;

  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    const path = commandPath(this);
    let text = message.replace(/^error: /, '');
    if (errorOptions?.code === 'commander.missingMandatoryOptionValue')
      text = this.unknownFlag ? `unknown option '${this.unknownFlag}'` : this.missingRequired();
    throw new UsageError(
      `${path}: ${text}\nusage: ${path} ${this.usage()}\n(${path} --help shows every option)`,
    );
  }

  override parseOptions(argv: string[]): ReturnType<Commander['parseOptions']> {
    try {
      const parsed = super.parseOptions(argv);
      this.unknownFlag = parsed.unknown.find((a) => a.startsWith('-'));
      return parsed;
    } catch (err) {
      if (err instanceof OptionValueError) this.error(err.message, { code: 'codeclm.optionValue' });
      throw err;
    }
  }

  /** All the required options not given, not only the first one commander stopped at. */
  private missingRequired(): string {
    return this.options
      .filter((o) => o.mandatory && this.getOptionValue(o.attributeName()) === undefined)
      .map((o) => `${o.long} is required`)
      .join('; ');
  }
}

function commandPath(cmd: Commander): string {
  const names: string[] = [];
  for (let c: Commander | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Told which command runs (its path, for a failure message) and the exit code it returned. */
export interface RunListener {
  started(path: string): void;
  finished(code: number): void;
}

const ignore: RunListener = { started: () => undefined, finished: () => undefined };

/** Adds `spec` (and its subcommands) to `parent`. */
export function addCommand(
  parent: Commander,
  spec: CommandSpec<never>,
  listener: RunListener = ignore,
): CliCommand {
  const cmd = new CliCommand(spec.name).summary(spec.summary).description(spec.summary);
  if (spec.devTool) cmd.helpGroup(DEV_TOOLS_GROUP);
  if (spec.args) cmd.arguments(spec.args);
  spec.options?.(cmd);
  if (spec.help?.length) cmd.addHelpText('after', `\n${spec.help.join('\n')}`);
  for (const sub of spec.subcommands ?? []) addCommand(cmd, sub, listener);
  const run = spec.run;
  if (run) {
    cmd.action(async (...actionArgs: unknown[]) => {
      const self = actionArgs[actionArgs.length - 1] as CliCommand;
      listener.started(commandPath(self));
      const code = await run.call(spec, self.opts() as never, self.processedArgs as string[]);
      listener.finished(code ?? EXIT_OK);
    });
  }
  parent.addCommand(cmd);
  return cmd;
}

/**
 * Parses `argv` as `spec` would be, without running it: the typed options and positional
 * arguments (for code that calls a command's helpers directly, and for tests).
 */
export function parseCommand<O>(spec: CommandSpec<O>, argv: string[]): { options: O; args: string[] } {
  let parsed: { options: O; args: string[] } | undefined;
  const root = new CliCommand('codeclm');
  const cmd = addCommand(root, { ...spec, subcommands: undefined } as CommandSpec<never>);
  cmd.action((...actionArgs: unknown[]) => {
    const self = actionArgs[actionArgs.length - 1] as CliCommand;
    parsed = { options: self.opts() as O, args: self.processedArgs as string[] };
  });
  root.parse([spec.name, ...argv], { from: 'user' });
  if (!parsed) throw new Error(`codeclm ${spec.name}: nothing was parsed`);
  return parsed;
}

/** Maps a CommanderError (help shown, or a parse failure that slipped past error()) to an exit code. */
export function exitCodeOf(err: CommanderError): number {
  return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
}

// ---- option types with their checks: each names its flag when the value is refused ----

/** For an option's own parser: `flag` refuses `value` (exit 2, "--flag must be <expected>, got ..."). */
export function valueError(flag: string | undefined, expected: string, value: string): Error {
  return new OptionValueError(`${flag} must be ${expected}, got "${value}"`);
}

/** An integer option, from `min` (default 1) to `max`. */
export function intOption(
  flags: string,
  description: string,
  range: { min?: number; max?: number } = {},
): Option {
  const opt = new Option(flags, description);
  const min = range.min ?? 1;
  const text = range.max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${range.max}`;
  return opt.argParser((value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || (range.max !== undefined && n > range.max))
      throw valueError(opt.long, text, value);
    return n;
  });
}

/** A number option, optionally bounded. */
export function numberOption(
  flags: string,
  description: string,
  range: { min?: number; max?: number } = {},
): Option {
  const opt = new Option(flags, description);
  const bounds = [
    range.min !== undefined ? `>= ${range.min}` : '',
    range.max !== undefined ? `<= ${range.max}` : '',
  ].filter(Boolean);
  const text = `a number${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  return opt.argParser((value: string) => {
    const n = Number(value);
    if (
      value.trim() === '' ||
      !Number.isFinite(n) ||
      (range.min !== undefined && n < range.min) ||
      (range.max !== undefined && n > range.max)
    )
      throw valueError(opt.long, text, value);
    return n;
  });
}

/** A TCP port option (0 allowed when `anyFree`: the system picks a free port). */
export function portOption(flags: string, description: string, anyFree = false): Option {
  return intOption(flags, description, { min: anyFree ? 0 : 1, max: 65535 });
}

/** An option taking one of `choices` (listed in the help); `normalise` maps spellings first. */
export function choiceOption(
  flags: string,
  description: string,
  choices: readonly string[],
  normalise: (value: string) => string = (v) => v,
): Option {
  const opt = new Option(flags, description).choices(choices);
  return opt.argParser((value: string) => {
    const v = normalise(value);
    if (!choices.includes(v)) throw valueError(opt.long, `one of ${choices.join(', ')}`, value);
    return v;
  });
}

/** An option whose value `check` converts or refuses (returning why, as "must be ..."). */
export function checkedOption<T>(
  flags: string,
  description: string,
  check: (value: string) => { ok: true; value: T } | { ok: false; expected: string },
): Option {
  const opt = new Option(flags, description);
  return opt.argParser((value: string) => {
    const r = check(value);
    if (!r.ok) throw valueError(opt.long, r.expected, value);
    return r.value;
  });
}

/**
 * An option that names a local file or directory: an s3:// value is refused (exit 2 naming the flag,
 * with `instead`), not turned into a directory called "s3:".
 */
export function localPathOption(flags: string, description: string, instead: string): Option {
  return checkedOption(flags, description, (value) =>
    value.startsWith('s3://')
      ? { ok: false, expected: `a local path (object storage does not apply here: ${instead})` }
      : { ok: true, value },
  );
}
