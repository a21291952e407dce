/**
 * Invalid input from the user (config, seeds, instruction files): the CLI exits 2 and prints the
 * message, which names the file, line or field and what was expected.
 */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message);
  }
}
