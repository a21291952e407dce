import { hash32 } from './prng';
import type { BatchError } from './batchInput';

/**
 * A batch as the simulator keeps it, and what it shows of it: the Batch object, and the lines of
 * its output and error files ({id, custom_id, response: {status_code, request_id, body}, error}).
 */
export interface LineFailure {
  customId: string;
  /** HTTP status of the line's response (default 500). */
  status?: number;
  code?: string;
  message?: string;
}

export interface SimBatchOptions {
  /** How long a batch stays in_progress before finalizing, ms (default 1000). */
  completionDelayMs?: number;
  /** How long validating and finalizing (and cancelling) take, ms (default 100 each). */
  validatingMs?: number;
  finalizingMs?: number;
  cancellingMs?: number;
  /** What the simulator's "24h" completion window lasts, ms (default 24 h): past it, a batch expires. */
  windowMs?: number;
  /** Share of lines answered with an error (HTTP 500 server_error), drawn per (batch, custom_id). */
  failureRate?: number;
  /** Lines failed by custom_id: each entry fails the next line with that custom_id once. */
  failLines?: (string | LineFailure)[];
  /** The next N batches created expire when they would have finished, half their lines done. */
  expire?: number;
  /** The next N batches created fail validation. */
  failValidation?: number;
}

/** The answer to one request line: a status and the JSON body the online endpoint would send. */
export interface LineAnswer {
  status: number;
  body: unknown;
  promptTokens: number;
  completionTokens: number;
}

export interface BatchStats {
  batchesCreated: number;
  /** Batches by their current status. */
  byStatus: Record<string, number>;
  /** Lines answered 200 in output files. */
  requests: number;
  /** Lines in error files (answered with an error, failed, expired or cancelled). */
  failedRequests: number;
  promptTokens: number;
  completionTokens: number;
}

export interface FileStats {
  uploaded: number;
  bytes: number;
  /** GET /v1/files/{id}/content answered, and their bytes (how often output files are fetched). */
  downloads: number;
  downloadedBytes: number;
}

export interface FileRecord {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'processed';
  status_details: null;
  expires_at: number | null;
}

export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

export interface BatchRecord {
  id: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  status: BatchStatus;
  createdMs: number;
  /** Timestamps (ms) of the states reached. */
  at: Partial<
    Record<
      'in_progress' | 'finalizing' | 'completed' | 'failed' | 'expired' | 'cancelling' | 'cancelled',
      number
    >
  >;
  /** How it ends if left alone (decided at creation from the on-demand knobs). */
  fate: 'complete' | 'expire' | 'fail_validation';
  /** With fate fail_validation: the error code it fails with, when one was asked for. */
  failCode?: string;
  errors: BatchError[] | null;
  model: string | null;
  total: number;
  /** Custom ids in input order (set by validation). */
  customIds: string[];
  /** Lines that will be answered with an error, by input index (set by validation). */
  lineFailures: Record<number, { status: number; code: string | null; message: string; type: string }>;
  /** Lines done when the batch stopped early (cancelled or expired). */
  doneAtStop?: number;
  output_file_id: string | null;
  error_file_id: string | null;
  counts: { completed: number; failed: number };
  usage: { input: number; output: number } | null;
}

const secs = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

export type BatchObject = { id: string } & Record<string, unknown>;

/** The Batch object as the API returns it. */
export function batchObject(
  batch: BatchRecord,
  windowMs: number,
  counts: { completed: number; failed: number },
): BatchObject {
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    model: batch.model,
    errors: batch.errors ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.input_file_id,
    completion_window: batch.completion_window,
    status: batch.status,
    output_file_id: batch.output_file_id,
    error_file_id: batch.error_file_id,
    created_at: secs(batch.createdMs),
    in_progress_at: secs(batch.at.in_progress),
    expires_at: secs(batch.createdMs + windowMs),
    finalizing_at: secs(batch.at.finalizing),
    completed_at: secs(batch.at.completed),
    failed_at: secs(batch.at.failed),
    expired_at: secs(batch.at.expired),
    cancelling_at: secs(batch.at.cancelling),
    cancelled_at: secs(batch.at.cancelled),
    request_counts: { total: batch.total, completed: counts.completed, failed: counts.failed },
    usage: batch.usage
      ? {
          input_tokens: batch.usage.input,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: batch.usage.output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: batch.usage.input + batch.usage.output,
        }
      : null,
    metadata: batch.metadata,
  };
}

/**
 * The lines of a finished batch's output and error files: the first `done` lines in processing
 * order ran (answered, or failed as decided at validation); the rest did not run, because the
 * batch expired or was cancelled.
 */
export function resultLines(
  seed: number,
  batch: BatchRecord,
  done: number,
  status: 'completed' | 'expired' | 'cancelled',
  bodyOf: Map<string, unknown>,
  answer: (body: unknown, id: string) => LineAnswer,
): { output: string[]; errors: string[]; input_tokens: number; output_tokens: number } {
  const order = processingOrder(seed, batch);
  const output: string[] = [];
  const errors: string[] = [];
  let input_tokens = 0;
  let output_tokens = 0;
  order.forEach((i, k) => {
    const customId = batch.customIds[i]!;
    const lineId = `batch_req_${hash32(seed, batch.id, customId).toString(16).padStart(8, '0')}${i.toString(16)}`;
    const requestId = `req_${hash32(seed, 'request', batch.id, customId).toString(16).padStart(8, '0')}`;
    if (k >= done) {
      const code = status === 'expired' ? 'batch_expired' : 'batch_cancelled';
      const message =
        status === 'expired'
          ? 'This request could not be executed before the completion window expired.'
          : 'This request was not executed because the batch was cancelled.';
      errors.push(
        JSON.stringify({ id: lineId, custom_id: customId, response: null, error: { code, message } }),
      );
      return;
    }
    const failure = batch.lineFailures[i];
    if (failure) {
      errors.push(
        JSON.stringify({
          id: lineId,
          custom_id: customId,
          response: {
            status_code: failure.status,
            request_id: requestId,
            body: {
              error: { message: failure.message, type: failure.type, param: null, code: failure.code },
            },
          },
          error: null,
        }),
      );
      return;
    }
    const answered = answer(bodyOf.get(customId), `chatcmpl-${lineId}`);
    const line = JSON.stringify({
      id: lineId,
      custom_id: customId,
      response: { status_code: answered.status, request_id: requestId, body: answered.body },
      error: null,
    });
    if (answered.status === 200) {
      output.push(line);
      input_tokens += answered.promptTokens;
      output_tokens += answered.completionTokens;
    } else errors.push(line);
  });
  return { output, errors, input_tokens, output_tokens };
}

/**
 * The order the lines of a batch run in (and are written to its output file): fixed by seed,
 * batch and custom_id, and not the input order, as the API says of its output files.
 */
export function processingOrder(seed: number, batch: BatchRecord): number[] {
  return batch.customIds
    .map((id, i) => ({ i, key: hash32(seed, 'order', batch.id, id) }))
    .sort((a, b) => a.key - b.key || a.i - b.i)
    .map((x) => x.i);
}
