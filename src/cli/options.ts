import { Option } from 'commander';
import { intOption } from './command';

/**
 * The options several commands share, each declared here once with its help. A command adds the
 * ones it takes; the description can be made more precise for that command.
 */
export const sharedOptions = {
  json: (description = 'print the result as JSON on stdout (logs and progress stay on stderr)') =>
    new Option('--json', description),
  config: (description = 'codeclm.config.json or .yaml (roles, method parameters, limits)') =>
    new Option('--config <file>', description),
  seeds: (
    description = 'seed instructions: JSONL, JSON array, CSV or text, a path or an s3://bucket/key object; ' +
      'the instruction field is detected (or --field NAME)',
  ) => new Option('--seeds <file>', description).makeOptionMandatory(),
  size: (description = 'target number of kept pairs (overrides limits.size)') =>
    intOption('--size <n>', description),
  field: (description = 'the instruction field, when detection picks the wrong one') =>
    new Option('--field <name>', description),
  skipInvalid: (description = 'skip bad lines (each is reported) instead of refusing to start') =>
    new Option('--skip-invalid', description),
  noCheck: () =>
    new Option('--no-check', 'skip the endpoint check (`codeclm check`) made before anything starts'),
  worker: () => new Option('--worker', 'also run a worker in this process when TEMPORAL_ADDRESS is set'),
};

/** What the shared options parse to (commander's camelCase names). */
export interface JsonOption {
  json?: boolean;
}
export interface ConfigOption {
  config?: string;
}
