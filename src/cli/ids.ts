import type { ResolvedConfig } from '../schemas/config';
import { ENCODE_CHUNK } from '../workflows/pipeline';
import { MAX_ID_LENGTH, longestRunWorkflowId } from '../workflows/ids';
import { UsageError } from './command';

/**
 * Temporal appends the nominal time (`-2006-01-02T15:04:05Z`) to the workflow id of every run a
 * schedule starts: that run's id is `<schedule id><this>`.
 */
export const SCHEDULE_TIME_SUFFIX = '-2006-01-02T15:04:05Z';

export interface RunIdCheck {
  /** The command and what the user gave, for the message: e.g. `run`, `--run-id`. */
  command: string;
  what: string;
  /** What is appended to the given id before it becomes the run id (schedules: the time). */
  appended?: string;
}

/**
 * The longest id the user may give for a run with these seeds and this config: the cluster's limit
 * minus what the run's longest derived workflow id adds. Exact, not a margin: the ids are built by
 * the same functions the workflows use (src/workflows/ids.ts).
 */
export function maxRunIdLength(
  seeds: number,
  config: ResolvedConfig,
  appended = '',
): { max: number; example: string } {
  const example = longestRunWorkflowId(`<id>${appended}`, {
    encodeChunks: Math.ceil(seeds / ENCODE_CHUNK),
    poolSize: config.method.poolSize,
    rounds: config.limits.topUpRounds + 1,
  });
  return { max: MAX_ID_LENGTH - (example.length - '<id>'.length), example };
}

/** Exit 2 (UsageError) when the id, or a workflow id derived from it, would pass the limit. */
export function checkRunIdLength(id: string, seeds: number, config: ResolvedConfig, check: RunIdCheck): void {
  const { max, example } = maxRunIdLength(seeds, config, check.appended);
  if (id.length <= max) return;
  throw new UsageError(
    `codeclm ${check.command}: ${check.what} is ${id.length} characters; at most ${max} fit this run. ` +
      `Temporal refuses workflow ids longer than ${MAX_ID_LENGTH} characters (limit.maxIDLength, ` +
      `PostgreSQL's VARCHAR(${MAX_ID_LENGTH})), and this run's longest workflow id is ${example} ` +
      `(${seeds} seeds, method.poolSize ${config.method.poolSize}, limits.topUpRounds ${config.limits.topUpRounds})`,
  );
}
