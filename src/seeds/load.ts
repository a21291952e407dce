import fs from 'node:fs';
import { readText } from '../config/read';
import { DEFAULT_MAX_SEED_CHARS } from '../schemas/config';
import type { Seed } from '../schemas/records';
import { InputError } from '../util/errors';
import { extractSeed } from './fields';
import { readRecords, type SeedFormat } from './formats';
import { isS3Location, resolveLocation } from '../store/store';
import { readLocationText } from '../store/open';
import { isTransientStoreError } from '../store/transient';

export { DEFAULT_MAX_SEED_CHARS };

/**
 * Loading seed instructions from a user's file. Every bad record is reported with file:line and a
 * reason, all at once, so a user fixes the file in one pass; nothing is half-loaded unless the
 * caller asked to skip invalid records. See fields.ts for which fields are recognised.
 */

export interface LoadSeedsOptions {
  /** Instruction field (dot path allowed: `turns.0`, `data.question`); overrides detection. */
  field?: string;
  /** Skip bad records (returned in `skipped`) instead of failing. */
  skipInvalid?: boolean;
  /** Longest accepted instruction, in characters (limits.maxSeedChars). */
  maxSeedChars?: number;
}

export interface SkippedSeed {
  origin: string;
  reason: string;
}

export interface LoadedSeeds {
  seeds: Seed[];
  warnings: string[];
  skipped: SkippedSeed[];
  format: SeedFormat;
  /** The instruction field used; several joined by ", " when records differ. */
  field: string;
}

/** Seed sets are hundreds to thousands of lines; far beyond this is a wrong file, not a seed set. */
export const MAX_SEED_FILE_BYTES = 256 * 1024 * 1024;
/** How many problems an error message lists before "and N more". */
export const MAX_LISTED_PROBLEMS = 20;

/** Whitespace-insensitive identity for duplicate detection. */
function normalise(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function listCapped(items: string[]): string[] {
  if (items.length <= MAX_LISTED_PROBLEMS) return items;
  return [...items.slice(0, MAX_LISTED_PROBLEMS), `... and ${items.length - MAX_LISTED_PROBLEMS} more`];
}

function checkSize(file: string): void {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return; // readText reports missing/unreadable files with a clear message
  }
  if (size > MAX_SEED_FILE_BYTES) {
    throw new InputError(
      `seed file ${file} is ${Math.round(size / 1048576)} MiB; the limit is ${MAX_SEED_FILE_BYTES / 1048576} MiB (seed sets are usually far smaller: is this the right file?)`,
    );
  }
}

/**
 * Input files given as s3:// URLs (`--seeds s3://...`, `--decontaminate s3://...`), fetched before
 * the (synchronous) loaders run: loadSeeds reads them from here, by URL, and names the URL in errors.
 */
const remoteInputs = new Map<string, string>();

/**
 * An s3:// input that could not be read for a reason that may heal (the store unreachable, a 5xx,
 * throttling), after the SDK's own retries: not bad input, so an activity retries it and the CLI
 * exits 1 saying so instead of calling the file bad (exit 2).
 */
export class InputUnavailableError extends Error {
  override name = 'InputUnavailableError';
}

export async function prefetchRemoteInputs(locations: (string | undefined)[]): Promise<void> {
  for (const location of locations) {
    if (!location || !isS3Location(location) || remoteInputs.has(resolveLocation(location))) continue;
    let text: string;
    try {
      text = await readLocationText(location);
    } catch (err) {
      const message = `cannot read ${location}: ${(err as Error).message}`;
      if (isTransientStoreError(err))
        throw new InputUnavailableError(
          `${message} (the object store may be unreachable or busy; retry later)`,
        );
      throw new InputError(message);
    }
    if (Buffer.byteLength(text) > MAX_SEED_FILE_BYTES)
      throw new InputError(`seed file ${location} is over ${MAX_SEED_FILE_BYTES / 1048576} MiB`);
    remoteInputs.set(resolveLocation(location), text.replace(/^\uFEFF/, ''));
  }
}

/** The text of an s3:// input fetched by prefetchRemoteInputs (undefined if it was not fetched). */
export function fetchedInput(location: string): string | undefined {
  return isS3Location(location) ? remoteInputs.get(resolveLocation(location)) : undefined;
}

/**
 * How many activities hold each fetched input (holdRemoteInputs, until they release it): runs or
 * evaluations in one worker may share an input, and one that finishes must not drop the text
 * another is about to read (it would fail as bad input).
 */
const holders = new Map<string, number>();

/**
 * prefetchRemoteInputs for an activity: the inputs are held until the returned release is called
 * (in a `finally`), then dropped unless another activity still holds them (a long-running worker
 * must not keep every run's seed file).
 */
export async function holdRemoteInputs(locations: (string | undefined)[]): Promise<() => void> {
  const urls = locations.filter((l): l is string => !!l && isS3Location(l)).map((l) => resolveLocation(l));
  for (const url of urls) holders.set(url, (holders.get(url) ?? 0) + 1);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const url of urls) {
      const n = (holders.get(url) ?? 1) - 1;
      if (n > 0) holders.set(url, n);
      else {
        holders.delete(url);
        remoteInputs.delete(url);
      }
    }
  };
  try {
    await prefetchRemoteInputs(locations);
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

export function loadSeeds(file: string, opts: LoadSeedsOptions = {}): LoadedSeeds {
  const maxChars = opts.maxSeedChars ?? DEFAULT_MAX_SEED_CHARS;
  const field = opts.field?.trim() || undefined;
  const remote = isS3Location(file) ? remoteInputs.get(resolveLocation(file)) : undefined;
  if (remote === undefined && isS3Location(file))
    throw new Error(`${file}: an s3:// input must be fetched first (prefetchRemoteInputs)`);
  if (remote === undefined) checkSize(file);
  const text = remote ?? readText(file, 'seed file');
  if (!text.trim())
    throw new InputError(
      `seed file ${file} is empty; expected one seed instruction per line (JSONL, CSV, TSV, text) or a JSON array`,
    );

  const { format, entries, warnings } = readRecords(file, text);
  if (field !== undefined && format === 'text') {
    throw new InputError(
      `--field ${field}: seed file ${file} is plain text (one instruction per line), which has no fields`,
    );
  }
  if (!entries.length)
    throw new InputError(
      `seed file ${file} has no seed records${format === 'csv' || format === 'tsv' ? ' (only a header row)' : ''}`,
    );

  const problems: { origin: string; reason: string }[] = [];
  const seeds: Seed[] = [];
  const fieldCounts = new Map<string, number>();
  const idLines = new Map<string, string>();

  for (const entry of entries) {
    const origin = `${file}:${entry.label}`;
    if (entry.error) {
      problems.push({ origin, reason: entry.error });
      continue;
    }
    const got = extractSeed(entry.value, format, field);
    if (!got.ok) {
      problems.push({ origin, reason: got.error });
      continue;
    }
    if (got.instruction.length > maxChars) {
      problems.push({
        origin,
        reason: `instruction is ${got.instruction.length} characters, over the limit of ${maxChars} (limits.maxSeedChars)`,
      });
      continue;
    }
    const id = got.id ?? `seed-${entry.label}`;
    const firstLine = idLines.get(id);
    if (firstLine !== undefined) {
      problems.push({
        origin,
        reason: `duplicate id "${id}" (already used at line ${firstLine}); ids must be unique`,
      });
      continue;
    }
    idLines.set(id, entry.label);
    fieldCounts.set(got.field, (fieldCounts.get(got.field) ?? 0) + 1);
    seeds.push({ id, instruction: got.instruction, origin });
  }

  if (problems.length && !opts.skipInvalid) {
    const n = problems.length;
    throw new InputError(
      `seed file ${file}: ${n} invalid record${n === 1 ? '' : 's'}; fix ${n === 1 ? 'it' : 'them'}, or pass --skip-invalid to skip ${n === 1 ? 'it' : 'them'}:`,
      listCapped(problems.map((p) => `${p.origin}: ${p.reason}`)),
    );
  }
  if (!seeds.length) {
    throw new InputError(
      `seed file ${file}: no valid seeds (all ${problems.length} records are invalid):`,
      listCapped(problems.map((p) => `${p.origin}: ${p.reason}`)),
    );
  }

  const unique = dropDuplicateTexts(file, seeds, warnings);
  if (fieldCounts.size > 1) {
    const parts = [...fieldCounts].map(([f, c]) => `"${f}" in ${c}`);
    warnings.push(
      `${file}: records use different instruction fields: ${parts.join(', ')}; pass --field to pick one`,
    );
  }
  return { seeds: unique, warnings, skipped: problems, format, field: [...fieldCounts.keys()].join(', ') };
}

/** Keeps the first of each group of seeds with the same text, warning once per group with its lines. */
function dropDuplicateTexts(file: string, seeds: Seed[], warnings: string[]): Seed[] {
  const groups = new Map<string, Seed[]>();
  for (const s of seeds) {
    const key = normalise(s.instruction);
    const g = groups.get(key);
    if (g) g.push(s);
    else groups.set(key, [s]);
  }
  const kept: Seed[] = [];
  const dupWarnings: string[] = [];
  for (const group of groups.values()) {
    kept.push(group[0]!);
    if (group.length > 1) {
      const lines = group.map((s) => s.origin.slice(file.length + 1));
      dupWarnings.push(
        `${file}: duplicate seed at lines ${lines.join(', ')}; kept line ${lines[0]} (id ${group[0]!.id})`,
      );
    }
  }
  // groups preserves first-seen order, so `kept` is still in file order.
  warnings.push(...listCapped(dupWarnings));
  return kept;
}
