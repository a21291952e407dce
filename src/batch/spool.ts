import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { openStore } from '../store/open';
import { joinLocation, mapLimit, type Store } from '../store/store';
import { CODE, type PartSelection, type StoredOutcome } from './protocol';
import type { LineOutcome } from './provider';

/**
 * The batch spool: where batch-mode request lines and outcomes live instead of in the batcher
 * workflow's state (issue 14). A directory or `s3://bucket/prefix` (src/store), by default
 * `<out>/.work/batches` of the run (or evaluation) the requests belong to; `batch.spool` sets
 * another. It holds request bodies and outcomes, never keys. Layout (keys relative to the spool):
 *
 * - `requests/<2 hex>/<part>.jsonl`: one part per group of lines a process sent at once, named by
 *   the hash of its content (writing it again writes the same object);
 * - `batches/<key hash>.tsv`: a batch file's manifest, one `id<TAB>part<TAB>line index` per request
 *   in file order (the batch is polled and resubmitted from it, never from a workflow input);
 * - `outcomes/<2 hex>/<request id>.json`: each finished request's outcome (its answer, the chat
 *   completion, with the output file's id; or the final failure), one small object per request, so
 *   a waiting call answers from a single read and never downloads an output file.
 */

/** Requests of one part per signal: a signal stays far below Temporal's 2 MB payload limit. */
export const PART_MAX_REQUESTS = 2000;
/** Reads and writes of the spool in flight at once (object stores answer one object per request). */
const SPOOL_CONCURRENCY = 32;

const stores = new Map<string, Store>();

/** One store per spool location and process. */
export function spoolStore(location: string, env: NodeJS.ProcessEnv = process.env): Store {
  let s = stores.get(location);
  if (!s) {
    s = openStore(location, env);
    stores.set(location, s);
  }
  return s;
}

/** The default spool's directory in the store of its run's (or evaluation's) out. */
const DEFAULT_SPOOL_DIR = '.work/batches';

/** The default spool of a run or evaluation writing to `outDir`. */
export function defaultSpool(outDir: string): string {
  return joinLocation(outDir, ...DEFAULT_SPOOL_DIR.split('/'));
}

/**
 * Deletes the default spool of a run or evaluation that has ended (its finalize step): its lines and
 * answers are only transport, as large as every prompt and answer of the run, and nothing reads
 * them once every call is answered. A spool set by `batch.spool` is left alone: its parts are named
 * by their content and may serve other runs at once.
 */
export async function removeDefaultSpool(out: Store): Promise<void> {
  await out.removeAll(DEFAULT_SPOOL_DIR);
}

const hex = (text: string, n: number) => crypto.createHash('sha256').update(text).digest('hex').slice(0, n);

export const spoolKeys = {
  part: (part: string) => `requests/${part.slice(0, 2)}/${part}.jsonl`,
  manifest: (batchKey: string) => `batches/${hex(batchKey, 32)}.tsv`,
  outcome: (id: string) => `outcomes/${id.slice(0, 2)}/${id}.json`,
};

/** Writes `lines` as a part (unless already there) and returns its name: the hash of its content. */
export async function writePart(store: Store, lines: string[]): Promise<string> {
  const content = lines.join('\n') + '\n';
  const part = hex(content, 40);
  const key = spoolKeys.part(part);
  if (!(await store.exists(key))) await store.write(key, content);
  return part;
}

/** The lines at `indexes` (ascending) of a part, streamed; fails if the part is missing. */
async function* partLines(store: Store, part: string, ranges: [number, number][]): AsyncGenerator<string> {
  const key = spoolKeys.part(part);
  // Written before its requests were signalled: missing means the spool was deleted under a live
  // run. Retrying cannot bring it back, so the batch's requests fail with this reason.
  if (!(await store.exists(key)))
    throw ApplicationFailure.nonRetryable(
      `batch spool ${store.where(key)}: part missing (was the spool deleted while the run was live?)`,
      'BatchSpoolMissing',
    );
  let r = 0;
  let i = 0;
  for await (const line of store.lines(key)) {
    while (r < ranges.length && i >= ranges[r]![1]) r++;
    if (r >= ranges.length) break;
    if (i >= ranges[r]![0]) yield line;
    i++;
  }
}

/** The request id of a line (`{"custom_id":"<id>",...}` as batchClient writes it). */
function customId(line: string): string {
  const m = /^\{"custom_id":"([^"\\]+)"/.exec(line);
  const id = m?.[1] ?? (JSON.parse(line) as { custom_id?: string }).custom_id;
  if (!id) throw new Error(`batch line without custom_id: ${line.slice(0, 80)}`);
  return id;
}

export interface AssembledFile {
  path: string;
  bytes: number;
  ids: string[];
  remove(): Promise<void>;
}

/**
 * Writes a batch file to a temp file from the spool, streaming: `inline` lines first (written to a
 * part of their own, so the manifest covers them), then each selected part's lines in order; and
 * the batch's manifest to the spool. On any failure (a part missing, the disk, the manifest's
 * write) the temp file is removed before the error goes on.
 */
export async function assembleBatchFile(
  store: Store,
  batchKey: string,
  inline: string[],
  parts: PartSelection[],
): Promise<AssembledFile> {
  const sel = [...parts];
  if (inline.length) sel.unshift({ part: await writePart(store, inline), ranges: [[0, inline.length]] });
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'codeclm-batch-'));
  const remove = () => fs.promises.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, 'batch.jsonl');
  const ids: string[] = [];
  const manifest: string[] = [];
  let bytes = 0;
  async function* content(): AsyncGenerator<string> {
    for (const { part, ranges } of sel) {
      const indexes = ranges.flatMap(([a, b]) => Array.from({ length: b - a }, (_, k) => a + k));
      let k = 0;
      for await (const line of partLines(store, part, ranges)) {
        const id = customId(line);
        ids.push(id);
        manifest.push(`${id}\t${part}\t${indexes[k++]}`);
        bytes += Buffer.byteLength(line) + 1;
        yield line + '\n';
      }
      if (k !== indexes.length)
        throw new Error(`batch spool part ${part}: ${indexes.length} line(s) selected, ${k} found`);
    }
  }
  try {
    // pipeline: backpressure, and a write error rejects here (never an unhandled 'error' event).
    await pipeline(Readable.from(content()), fs.createWriteStream(file));
    await store.write(spoolKeys.manifest(batchKey), manifest.join('\n') + '\n');
  } catch (err) {
    await remove();
    throw err;
  }
  return { path: file, bytes, ids, remove };
}

export interface ManifestRow {
  id: string;
  part: string;
  index: number;
}

/**
 * A batch's manifest rows; undefined when the manifest is gone (written, never empty, before the
 * batch was created: the spool was deleted under a live run). A store error is thrown (it may heal).
 */
export async function readManifestRows(store: Store, batchKey: string): Promise<ManifestRow[] | undefined> {
  const rows: ManifestRow[] = [];
  for await (const l of store.lines(spoolKeys.manifest(batchKey))) {
    if (!l) continue;
    const [id, part, index] = l.split('\t');
    rows.push({ id: id!, part: part!, index: Number(index) });
  }
  return rows.length ? rows : undefined;
}

/**
 * The codes of an ended batch whose manifest is gone: every request "not to resubmit" (its lines
 * cannot be found again). Its answered requests have their outcomes all the same (written by id from
 * the output file); any other request's call finds no outcome and fails with BatchSpoolMissing,
 * instead of the poll retrying until the batch's deadline.
 */
export function manifestGoneCodes(attempts: string | undefined): string {
  return CODE.failed.repeat(attempts?.length ?? 0);
}

/** A manifest row's line, or why it cannot be read: its part, or the line, gone from the spool. */
export type RowLine = { line: string } | { missing: string };

/**
 * The lines of these manifest rows, in their order, read from their parts. A part or line gone
 * from the spool (deleted under a live run) cannot come back: its rows get the BatchSpoolMissing
 * reason instead of a line, and the rest are read as usual. Any other error (the store unreachable)
 * is thrown, so the poll is retried.
 */
export async function rowLines(store: Store, rows: ManifestRow[]): Promise<RowLine[]> {
  const byPart = new Map<string, number[]>();
  for (const r of rows) {
    const indexes = byPart.get(r.part);
    if (indexes) indexes.push(r.index);
    else byPart.set(r.part, [r.index]);
  }
  const found = new Map<string, string>();
  const gone = new Map<string, string>();
  for (const [part, indexes] of byPart) {
    indexes.sort((a, b) => a - b);
    const ranges = indexes.map((i): [number, number] => [i, i + 1]);
    let k = 0;
    try {
      for await (const line of partLines(store, part, ranges)) found.set(`${part}#${indexes[k++]}`, line);
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === 'BatchSpoolMissing')) throw err;
      gone.set(part, err.message);
    }
  }
  return rows.map((r) => {
    const line = found.get(`${r.part}#${r.index}`);
    if (line !== undefined) return { line };
    return {
      missing:
        gone.get(r.part) ??
        `batch spool ${store.where(spoolKeys.part(r.part))}: line ${r.index} missing (was the spool changed while the run was live?)`,
    };
  });
}

/**
 * What becomes of each request of an ended spooled batch (`outcomes` in manifest order; `attempts`
 * one base-36 digit per row: its batches before this one): one CODE per row; failures stored with
 * their reason; those worth another batch copied to a new part (their sizes in order). A request
 * to resubmit whose line is gone from the spool fails with the BatchSpoolMissing reason (retrying
 * the poll could never bring it back); the others of the batch go on. `uncounted`: this batch
 * does not count (it failed as a whole; the batcher bounds those): every retry goes in again.
 */
export async function settleRows(
  store: Store,
  rows: ManifestRow[],
  outcomes: LineOutcome[],
  attempts: string | undefined,
  maxResubmits: number,
  uncounted = false,
): Promise<{ codes: string; retry?: { part: string; bytes: number[] } }> {
  const stored: [string, StoredOutcome][] = [];
  const codes: string[] = [];
  const again: number[] = [];
  outcomes.forEach((o, i) => {
    if (o.kind === 'ok') {
      codes.push(CODE.done); // written as the output file streamed by, with its answer
    } else if (o.kind === 'failed') {
      stored.push([o.id, { state: 'failed', reason: o.reason, status: o.status, body: o.body }]);
      codes.push(CODE.failed);
    } else {
      const n = parseInt(attempts?.[i] ?? '0', 36) + 1;
      if (n > maxResubmits && !uncounted) {
        const reason = `${o.reason} (in ${n} batch(es); ${maxResubmits} resubmission(s) allowed)`;
        stored.push([o.id, { state: 'failed', reason }]);
        codes.push(CODE.failed);
      } else {
        again.push(i);
        codes.push(CODE.retry);
      }
    }
  });
  const lines: string[] = [];
  if (again.length) {
    (
      await rowLines(
        store,
        again.map((i) => rows[i]!),
      )
    ).forEach((r, k) => {
      if ('line' in r) return void lines.push(r.line);
      stored.push([rows[again[k]!]!.id, { state: 'failed', reason: r.missing }]);
      codes[again[k]!] = CODE.failed;
    });
  }
  await writeOutcomes(store, stored);
  if (!lines.length) return { codes: codes.join('') };
  const part = await writePart(store, lines);
  return { codes: codes.join(''), retry: { part, bytes: lines.map((l) => Buffer.byteLength(l) + 1) } };
}

export async function writeOutcomes(store: Store, outcomes: [string, StoredOutcome][]): Promise<void> {
  await mapLimit(outcomes, SPOOL_CONCURRENCY, ([id, o]) =>
    store.write(spoolKeys.outcome(id), JSON.stringify(o)),
  );
}

/**
 * Writes outcomes as they are decided (while a batch's output file streams by), at most
 * SPOOL_CONCURRENCY at once: `write` waits for a free slot, so a fast download cannot pile up
 * writes in memory; `drain` waits for the rest and throws the first failure.
 */
export class OutcomeWriter {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly store: Store) {}

  async write(id: string, outcome: StoredOutcome): Promise<void> {
    while (this.inFlight.size >= SPOOL_CONCURRENCY) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.err;
    const p: Promise<void> = this.store.write(spoolKeys.outcome(id), JSON.stringify(outcome)).then(
      () => void this.inFlight.delete(p),
      (err: unknown) => {
        this.inFlight.delete(p);
        this.failure ??= { err };
      },
    );
    this.inFlight.add(p);
  }

  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.err;
  }
}

export function readOutcome(store: Store, id: string): Promise<StoredOutcome | undefined> {
  return store.readJson<StoredOutcome>(spoolKeys.outcome(id));
}

export { SPOOL_CONCURRENCY };
