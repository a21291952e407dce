import crypto from 'node:crypto';
import fs from 'node:fs';
import OpenAI from 'openai';
import type { ResolvedRole } from '../schemas/config';
import { splitLines } from '../store/local';

/**
 * OpenAI's Files + Batches API as codeclm uses it: idempotent upload and create (a deterministic
 * key, checked before anything is created), retrieve, cancel, and reading a finished batch's output
 * and error files into one outcome per request (custom_id).
 */

const PLACEHOLDER_KEY = 'not-set';
export const KEY_METADATA = 'codeclm_key';
/** How many of the newest batches and files are looked through for an earlier copy. */
const LIST_LIMIT = 2000;

export function batchSdk(cfg: ResolvedRole, env: NodeJS.ProcessEnv = process.env): OpenAI {
  return new OpenAI({
    baseURL: cfg.baseURL,
    apiKey: env[cfg.apiKeyEnv] || PLACEHOLDER_KEY,
    maxRetries: 2,
    timeout: 120_000,
  });
}

export function fileNameFor(key: string): string {
  return `codeclm-${crypto.createHash('sha256').update(key).digest('hex').slice(0, 32)}.jsonl`;
}

export interface Submitted {
  batchId: string;
  inputFileId: string;
  /** Provider's created_at, milliseconds. */
  createdAt: number;
  /** False when an earlier attempt had already created it. */
  createdNow: boolean;
}

/**
 * Uploads the batch file at `file.path` (or reuses the one of that key) and creates the batch
 * unless one has the key. The file is streamed from disk, never held whole as a string.
 */
export async function submitOnce(
  sdk: OpenAI,
  key: string,
  file: { path: string; bytes: number },
  completionWindow: '24h',
): Promise<Submitted> {
  const existing = await findBatch(sdk, key);
  if (existing)
    return {
      batchId: existing.id,
      inputFileId: existing.input_file_id,
      createdAt: existing.created_at * 1000,
      createdNow: false,
    };
  const name = fileNameFor(key);
  let fileId: string | undefined;
  let seen = 0;
  for await (const f of sdk.files.list({ purpose: 'batch' })) {
    if (f.filename === name && f.bytes === file.bytes && f.status !== 'error') {
      fileId = f.id;
      break;
    }
    if (++seen >= LIST_LIMIT) break;
  }
  // No retries inside the SDK for the two creates: a create whose answer was lost (a timeout, a
  // 5xx from a gateway after the provider acted) would be sent again without the look-up above and
  // make a second batch (or file). The activity's retry looks first, then creates.
  const once = { maxRetries: 0 };
  fileId ??= (await sdk.files.create({ file: namedStream(file.path, name), purpose: 'batch' }, once)).id;
  const batch = await sdk.batches.create(
    {
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: completionWindow,
      metadata: { [KEY_METADATA]: key },
    },
    once,
  );
  return { batchId: batch.id, inputFileId: fileId, createdAt: batch.created_at * 1000, createdNow: true };
}

/** A read stream the SDK uploads (streaming) under `name` (it takes a `name` before the path). */
function namedStream(file: string, name: string): fs.ReadStream {
  return Object.assign(fs.createReadStream(file), { name });
}

async function findBatch(sdk: OpenAI, key: string): Promise<OpenAI.Batches.Batch | undefined> {
  let seen = 0;
  for await (const b of sdk.batches.list({ limit: 100 })) {
    if (b.metadata?.[KEY_METADATA] === key) return b;
    if (++seen >= LIST_LIMIT) break;
  }
  return undefined;
}

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** Codes of lines worth a new batch (the request itself was fine). */
const RETRYABLE_CODES = new Set([
  'batch_expired',
  'rate_limit_exceeded',
  'server_error',
  'internal_error',
  'timeout',
  'batch_failed',
]);

export type LineOutcome =
  | { id: string; kind: 'ok' }
  | { id: string; kind: 'retry'; reason: string }
  | { id: string; kind: 'failed'; reason: string; status?: number; body?: unknown };

export interface ResultLine {
  custom_id?: string;
  response?: { status_code?: number; body?: unknown } | null;
  error?: { code?: string | null; message?: string | null } | null;
}

/**
 * The lines of a file's content as the provider sends them: the response body is read as a stream,
 * so an output file of 200 MB never sits whole in memory.
 */
export async function* fileLines(sdk: OpenAI, fileId: string, signal?: AbortSignal): AsyncGenerator<string> {
  const res = await sdk.files.content(fileId, { signal });
  if (!res.body) return;
  yield* splitLines(bytesOf(res.body));
}

async function* bytesOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>)
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Each parsed line of a batch's output or error file, streamed (see fileLines). */
export async function* resultLines(
  sdk: OpenAI,
  fileId: string,
  signal?: AbortSignal,
): AsyncGenerator<ResultLine> {
  for await (const l of fileLines(sdk, fileId, signal)) {
    const line = parseLine(l);
    if (line) yield line;
  }
}

function parseLine(l: string): ResultLine | undefined {
  if (!l.trim()) return undefined;
  try {
    return JSON.parse(l) as ResultLine;
  } catch {
    return undefined; // a torn line cannot be attributed to a request: its request counts as missing
  }
}

export function parseLines(text: string): ResultLine[] {
  return text.split('\n').flatMap((l) => parseLine(l) ?? []);
}

function errorMessage(body: unknown): string {
  const e = (body as { error?: { message?: unknown } } | null)?.error;
  return typeof e?.message === 'string' ? e.message : JSON.stringify(body ?? null).slice(0, 300);
}

/**
 * Outcomes of a finished batch's lines, taken one line at a time (its files are streamed): the
 * first line of a request decides it. An answered (200) line's outcome is `ok` without its body:
 * whoever needs the answer takes it from the line as it goes by (see add), nothing keeps it.
 */
export class OutcomeCollector {
  private readonly byId = new Map<string, LineOutcome>();

  /**
   * `givenUp`: the batcher itself cancelled the batch (past its completion window and margin), so
   * its cancelled lines are worth another batch, not failures.
   */
  constructor(
    private readonly wanted?: ReadonlySet<string>,
    private readonly givenUp = false,
  ) {}

  /** The line's outcome if it is the first line of a wanted request, else undefined. */
  add(line: ResultLine): LineOutcome | undefined {
    const id = line.custom_id;
    if (!id || this.byId.has(id) || (this.wanted && !this.wanted.has(id))) return undefined;
    const o = lineOutcome(id, line, this.givenUp);
    this.byId.set(id, o);
    return o;
  }

  /** One outcome per request of `ids`, in order; a request without a line is decided by the batch. */
  finish(batch: Pick<OpenAI.Batches.Batch, 'status' | 'errors'>, ids: string[]): LineOutcome[] {
    const batchReason = batchErrorReason(batch);
    return ids.map(
      (id) =>
        this.byId.get(id) ??
        (batch.status !== 'cancelled'
          ? { id, kind: 'retry', reason: batchReason }
          : this.givenUp
            ? { id, kind: 'retry', reason: GIVEN_UP }
            : { id, kind: 'failed', reason: `batch cancelled at the provider: ${batchReason}` }),
    );
  }
}

/** Why a batch ended as it did: its errors (`code: message; ...`), or its status when it lists none. */
export function batchErrorReason(batch: Pick<OpenAI.Batches.Batch, 'status' | 'errors'>): string {
  return (
    batch.errors?.data?.map((e) => `${e.code ?? 'error'}: ${e.message ?? ''}`).join('; ') ||
    `batch ${batch.status} without a line for this request`
  );
}

const GIVEN_UP = 'batch given up past its completion window and margin (cancelled)';

function lineOutcome(id: string, line: ResultLine, givenUp = false): LineOutcome {
  const status = line.response?.status_code;
  if (status === 200) return { id, kind: 'ok' };
  if (status !== undefined) {
    const reason = `HTTP ${status}: ${errorMessage(line.response?.body)}`;
    return status === 429 || status >= 500
      ? { id, kind: 'retry', reason }
      : { id, kind: 'failed', reason, status, body: line.response?.body };
  }
  const code = line.error?.code ?? 'unknown_error';
  const reason = `${code}: ${line.error?.message ?? ''}`.trim();
  if (RETRYABLE_CODES.has(code)) return { id, kind: 'retry', reason };
  if (code === 'batch_cancelled' && givenUp) return { id, kind: 'retry', reason: `${GIVEN_UP}: ${reason}` };
  return {
    id,
    kind: 'failed',
    reason: code === 'batch_cancelled' ? `cancelled at the provider (${reason})` : reason,
  };
}

/** One outcome per request of a finished batch: from its output file, its error file, or missing. */
export function outcomesOf(
  batch: Pick<OpenAI.Batches.Batch, 'status' | 'errors'>,
  ids: string[],
  lines: ResultLine[],
): LineOutcome[] {
  const c = new OutcomeCollector();
  for (const line of lines) c.add(line);
  return c.finish(batch, ids);
}
