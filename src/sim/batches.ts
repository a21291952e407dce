import fs from 'node:fs';
import path from 'node:path';
import { HttpError } from './errors';
import { readCreateRequest, readInputLines, type BatchError } from './batchInput';
import {
  batchObject,
  processingOrder,
  resultLines,
  type BatchObject,
  type BatchRecord,
  type BatchStats,
  type FileRecord,
  type FileStats,
  type LineAnswer,
  type LineFailure,
  type SimBatchOptions,
} from './batchRecord';
import { page } from './listPage';
import { hash32, unit } from './prng';

export { MAX_BATCH_FILE_BYTES } from './batchInput';
export type { BatchStats, FileStats, LineAnswer, LineFailure, SimBatchOptions } from './batchRecord';

/**
 * The simulator's Files and Batch API (OpenAI's shapes): uploaded JSONL files of requests, batches
 * that go validating -> in_progress -> finalizing -> completed (or failed, expired, cancelling ->
 * cancelled), and output/error files whose lines carry custom_id, response {status_code,
 * request_id, body} and error. Each line is answered by the online endpoint's own generator
 * (`answer`, given by the server), so a request gets the same reply in a batch as online.
 *
 * Time is the wall clock and the state moves lazily, when a batch is read: a batch's status is a
 * function of its timestamps, so a simulator restarted with the same state dir carries on where
 * it stopped.
 */
const FILE_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];
const MAX_LISTED_ERRORS = 100;
const DAY_MS = 24 * 3600 * 1000;
const TERMINAL = new Set(['failed', 'completed', 'expired', 'cancelled']);

interface PersistedState {
  version: 1;
  counter: number;
  files: FileRecord[];
  batches: BatchRecord[];
  batchStats: BatchStats;
  fileStats: FileStats;
  pending: {
    expire: number;
    failValidation: number;
    failLines: LineFailure[];
    /** The error code of the validation failures from now on (default simulated_validation_failure). */
    validationCode?: string;
  };
  /** Files deleted while an unfinished batch still reads them: hidden, kept until it finishes. */
  deleted: string[];
}

export interface BatchStoreOptions extends SimBatchOptions {
  seed: number;
  /** Keeps files and batches across restarts. */
  stateDir?: string;
  /** Answers one request line (a chat body) as the online endpoint would, without its HTTP faults. */
  answer: (body: unknown, requestId: string) => LineAnswer;
  /** Validates a line's body before it runs: a returned answer is that line's error response. */
  precheck: (body: unknown) => { status: number; body: unknown } | undefined;
  now?: () => number;
}

function emptyBatchStats(): BatchStats {
  return {
    batchesCreated: 0,
    byStatus: {},
    requests: 0,
    failedRequests: 0,
    promptTokens: 0,
    completionTokens: 0,
  };
}

export class BatchStore {
  private state: PersistedState;
  private contents = new Map<string, Buffer>();
  private readonly now: () => number;
  private readonly delayMs: number;
  private readonly validatingMs: number;
  private readonly finalizingMs: number;
  private readonly cancellingMs: number;
  private readonly windowMs: number;

  constructor(private readonly opts: BatchStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.delayMs = opts.completionDelayMs ?? 1000;
    this.validatingMs = opts.validatingMs ?? 100;
    this.finalizingMs = opts.finalizingMs ?? 100;
    this.cancellingMs = opts.cancellingMs ?? 100;
    this.windowMs = opts.windowMs ?? DAY_MS;
    if (opts.stateDir) fs.mkdirSync(opts.stateDir, { recursive: true });
    this.state = this.load() ?? this.fresh();
  }

  private fresh(): PersistedState {
    return {
      version: 1,
      counter: 0,
      files: [],
      batches: [],
      batchStats: emptyBatchStats(),
      fileStats: { uploaded: 0, bytes: 0, downloads: 0, downloadedBytes: 0 },
      pending: {
        expire: this.opts.expire ?? 0,
        failValidation: this.opts.failValidation ?? 0,
        failLines: (this.opts.failLines ?? []).map((f) => (typeof f === 'string' ? { customId: f } : f)),
      },
      deleted: [],
    };
  }

  // --- persistence ------------------------------------------------------------------------------

  private get stateFile(): string | undefined {
    return this.opts.stateDir ? path.join(this.opts.stateDir, 'state.json') : undefined;
  }

  private contentPath(id: string): string {
    return path.join(this.opts.stateDir!, 'files', id);
  }

  /** The state a previous simulator left in the state dir (its knobs' remaining faults included). */
  private load(): PersistedState | undefined {
    const file = this.stateFile;
    if (!file || !fs.existsSync(file)) return undefined;
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as PersistedState;
    // A state saved by an older simulator counts no downloads.
    const saved: Partial<FileStats> = state.fileStats;
    state.fileStats = {
      ...state.fileStats,
      downloads: saved.downloads ?? 0,
      downloadedBytes: saved.downloadedBytes ?? 0,
    };
    for (const f of state.files) {
      const p = this.contentPath(f.id);
      if (fs.existsSync(p)) this.contents.set(f.id, fs.readFileSync(p));
    }
    return state;
  }

  private save(): void {
    const file = this.stateFile;
    if (!file) return;
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state));
    fs.renameSync(tmp, file);
  }

  private storeContent(id: string, content: Buffer): void {
    this.contents.set(id, content);
    if (!this.opts.stateDir) return;
    fs.mkdirSync(path.join(this.opts.stateDir, 'files'), { recursive: true });
    fs.writeFileSync(this.contentPath(id), content);
  }

  /** Forgets every file and batch (and the state dir's copy). */
  reset(): void {
    if (this.opts.stateDir)
      fs.rmSync(path.join(this.opts.stateDir, 'files'), { recursive: true, force: true });
    this.contents.clear();
    this.state = this.fresh();
    this.save();
  }

  private nextId(prefix: string): string {
    const n = ++this.state.counter;
    return `${prefix}${hash32(this.opts.seed, prefix, n).toString(16).padStart(8, '0')}${n.toString(16).padStart(4, '0')}`;
  }

  // --- files ------------------------------------------------------------------------------------

  uploadFile(filename: string, purpose: string, content: Buffer): FileRecord {
    if (!FILE_PURPOSES.includes(purpose))
      throw new HttpError(
        400,
        `'${purpose}' is not one of ${FILE_PURPOSES.map((p) => `'${p}'`).join(', ')} - 'purpose'`,
        'invalid_request_error',
        null,
        'purpose',
      );
    const file = this.addFile(filename, purpose, content);
    this.state.fileStats.uploaded++;
    this.state.fileStats.bytes += content.length;
    this.save();
    return file;
  }

  private addFile(filename: string, purpose: string, content: Buffer): FileRecord {
    const createdMs = this.now();
    const file: FileRecord = {
      id: this.nextId('file-'),
      object: 'file',
      bytes: content.length,
      created_at: Math.floor(createdMs / 1000),
      filename,
      purpose,
      status: 'processed',
      status_details: null,
      // Batch files expire after 30 days by default (the simulator never deletes them itself).
      expires_at: purpose === 'batch' ? Math.floor(createdMs / 1000) + 30 * 24 * 3600 : null,
    };
    this.state.files.push(file);
    this.storeContent(file.id, content);
    return file;
  }

  getFile(id: string): FileRecord {
    const file = this.state.files.find((f) => f.id === id && !this.state.deleted.includes(id));
    if (!file) throw new HttpError(404, `No such File object: ${id}`, 'invalid_request_error', null, 'id');
    return file;
  }

  fileContent(id: string): Buffer {
    this.getFile(id);
    const content = this.contents.get(id);
    if (!content) throw new HttpError(404, `The content of file ${id} is gone`, 'invalid_request_error');
    this.state.fileStats.downloads++;
    this.state.fileStats.downloadedBytes += content.length;
    this.save();
    return content;
  }

  deleteFile(id: string): { id: string; object: 'file'; deleted: true } {
    this.getFile(id);
    const running = this.state.batches.some((b) => b.input_file_id === id && !TERMINAL.has(b.status));
    if (running) this.state.deleted.push(id);
    else this.dropFile(id);
    this.save();
    return { id, object: 'file', deleted: true };
  }

  private dropFile(id: string): void {
    this.state.files = this.state.files.filter((f) => f.id !== id);
    this.state.deleted = this.state.deleted.filter((d) => d !== id);
    this.contents.delete(id);
    if (this.opts.stateDir) fs.rmSync(this.contentPath(id), { force: true });
  }

  listFiles(query: URLSearchParams): unknown {
    let files = [...this.state.files];
    const purpose = query.get('purpose');
    if (purpose) files = files.filter((f) => f.purpose === purpose);
    const order = query.get('order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc')
      throw new HttpError(
        400,
        `'order' must be 'asc' or 'desc', got '${order}'`,
        'invalid_request_error',
        null,
        'order',
      );
    if (order === 'desc') files.reverse();
    return page(
      files.filter((f) => !this.state.deleted.includes(f.id)),
      query,
      10_000,
      10_000,
    );
  }

  // --- batches ----------------------------------------------------------------------------------

  createBatch(body: unknown): unknown {
    const b = readCreateRequest(body);
    const bad = (message: string, param: string) =>
      new HttpError(400, message, 'invalid_request_error', null, param);
    const file = this.state.files.find((f) => f.id === b.input_file_id && !this.state.deleted.includes(f.id));
    if (!file)
      throw new HttpError(
        404,
        `No such File object: ${b.input_file_id}`,
        'invalid_request_error',
        null,
        'input_file_id',
      );
    if (file.purpose !== 'batch')
      throw bad(
        `File ${file.id} has purpose '${file.purpose}'; a batch's input file must have purpose 'batch'.`,
        'input_file_id',
      );

    const p = this.state.pending;
    const fate: BatchRecord['fate'] =
      p.failValidation > 0 ? 'fail_validation' : p.expire > 0 ? 'expire' : 'complete';
    const failCode = fate === 'fail_validation' ? p.validationCode : undefined;
    if (fate === 'fail_validation') p.failValidation--;
    else if (fate === 'expire') p.expire--;
    const batch: BatchRecord = {
      id: this.nextId('batch_'),
      endpoint: b.endpoint,
      input_file_id: file.id,
      completion_window: '24h',
      metadata: b.metadata,
      status: 'validating',
      createdMs: this.now(),
      at: {},
      fate,
      ...(failCode ? { failCode } : {}),
      errors: null,
      model: null,
      total: 0,
      customIds: [],
      lineFailures: {},
      output_file_id: null,
      error_file_id: null,
      counts: { completed: 0, failed: 0 },
      usage: null,
    };
    this.state.batches.push(batch);
    this.state.batchStats.batchesCreated++;
    this.save();
    return this.view(batch);
  }

  getBatch(id: string): unknown {
    const batch = this.find(id);
    if (this.advance(batch)) this.save();
    return this.view(batch);
  }

  listBatches(query: URLSearchParams): unknown {
    let changed = false;
    for (const b of this.state.batches) changed = this.advance(b) || changed;
    if (changed) this.save();
    // Newest first, as the API lists them.
    const views = [...this.state.batches].reverse().map((b) => this.view(b));
    return page(views, query, 20, 100);
  }

  cancelBatch(id: string): unknown {
    const batch = this.find(id);
    this.advance(batch);
    const now = this.now();
    // Cancelled while validating: the file is read first, so the counts and error file list its lines.
    if (batch.status === 'validating') this.validate(batch, now);
    if (batch.status === 'in_progress') {
      batch.doneAtStop = this.doneBy(batch, now);
      batch.status = 'cancelling';
      batch.at.cancelling = now;
      this.advance(batch);
      this.save();
    } else if (batch.status !== 'cancelling' && batch.status !== 'cancelled') {
      throw new HttpError(
        409,
        `Cannot cancel a batch with status '${batch.status}'.`,
        'invalid_request_error',
        null,
      );
    }
    return this.view(batch);
  }

  /** On demand (control endpoint): the batch expires now, with the lines done so far. */
  expireNow(id: string): unknown {
    const batch = this.find(id);
    this.advance(batch);
    const now = this.now();
    if (batch.status === 'validating') {
      this.validate(batch, now);
      batch.doneAtStop = 0;
    } else if (batch.status === 'in_progress') batch.doneAtStop = this.doneBy(batch, now);
    if (batch.status === 'in_progress') {
      this.finish(batch, 'expired', now);
      this.save();
    } else if (batch.status !== 'expired' && batch.status !== 'failed')
      throw new HttpError(
        409,
        `Cannot expire a batch with status '${batch.status}'.`,
        'invalid_request_error',
      );
    return this.view(batch);
  }

  /** On demand (control endpoint): more faults for the batches still to come. */
  addFaults(body: unknown): PersistedState['pending'] {
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new HttpError(
        400,
        'expected {"expire"?: N, "failValidation"?: N, "validationCode"?: code, "failLines"?: [custom_id | {customId, status, code, message}]}',
      );
    const b = body as Record<string, unknown>;
    const known = new Set(['expire', 'failValidation', 'validationCode', 'failLines']);
    const extra = Object.keys(b).filter((k) => !known.has(k));
    if (extra.length) throw new HttpError(400, `unknown key(s) ${extra.join(', ')}`);
    const count = (k: string) => {
      const v = b[k];
      if (v === undefined) return 0;
      if (!Number.isInteger(v) || (v as number) < 0) throw new HttpError(400, `${k} must be an integer >= 0`);
      return v as number;
    };
    const code = b.validationCode;
    if (code !== undefined && (typeof code !== 'string' || !/^[a-z_]+$/.test(code)))
      throw new HttpError(400, 'validationCode must be an error code such as "token_limit_exceeded"');
    const lines = b.failLines === undefined ? [] : b.failLines;
    if (!Array.isArray(lines)) throw new HttpError(400, 'failLines must be a list');
    const failLines = lines.map((l, i) => {
      if (typeof l === 'string') return { customId: l };
      if (l && typeof l === 'object' && typeof (l as LineFailure).customId === 'string')
        return l as LineFailure;
      throw new HttpError(
        400,
        `failLines[${i}]: expected a custom_id or {customId, status?, code?, message?}`,
      );
    });
    this.state.pending.expire += count('expire');
    this.state.pending.failValidation += count('failValidation');
    this.state.pending.failLines.push(...failLines);
    if (code !== undefined) this.state.pending.validationCode = code;
    this.save();
    return structuredClone(this.state.pending);
  }

  stats(): { batch: BatchStats; files: FileStats } {
    let changed = false;
    for (const b of this.state.batches) changed = this.advance(b) || changed;
    if (changed) this.save();
    const byStatus: Record<string, number> = {};
    for (const b of this.state.batches) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
    return {
      batch: { ...structuredClone(this.state.batchStats), byStatus },
      files: { ...this.state.fileStats },
    };
  }

  private find(id: string): BatchRecord {
    const batch = this.state.batches.find((b) => b.id === id);
    if (!batch)
      throw new HttpError(404, `No batch found with id '${id}'.`, 'invalid_request_error', null, 'batch_id');
    return batch;
  }

  // --- lifecycle --------------------------------------------------------------------------------

  /** Lines finished by `now` while in progress (they run evenly over the completion delay). */
  private doneBy(batch: BatchRecord, now: number): number {
    const start = batch.at.in_progress ?? now;
    if (this.delayMs <= 0) return batch.total;
    return Math.min(batch.total, Math.floor((batch.total * Math.max(0, now - start)) / this.delayMs));
  }

  /** Moves a batch through every state its timestamps have reached; true when it changed. */
  private advance(batch: BatchRecord): boolean {
    const now = this.now();
    const before = batch.status;
    if (batch.status === 'validating') {
      const at = batch.createdMs + this.validatingMs;
      if (now < at) return false;
      this.validate(batch, at);
    }
    if (batch.status === 'in_progress') {
      const start = batch.at.in_progress!;
      const windowEnd = batch.createdMs + this.windowMs;
      const end = start + this.delayMs;
      if (windowEnd < end && now >= windowEnd) {
        batch.doneAtStop = this.doneBy(batch, windowEnd);
        this.finish(batch, 'expired', windowEnd);
      } else if (now >= end && batch.fate === 'expire') {
        batch.doneAtStop = Math.floor(batch.total / 2);
        this.finish(batch, 'expired', end);
      } else if (now >= end) {
        batch.status = 'finalizing';
        batch.at.finalizing = end;
      }
    }
    if (batch.status === 'finalizing') {
      const at = batch.at.finalizing! + this.finalizingMs;
      if (now >= at) this.finish(batch, 'completed', at);
    }
    if (batch.status === 'cancelling') {
      const at = batch.at.cancelling! + this.cancellingMs;
      if (now >= at) this.finish(batch, 'cancelled', at);
    }
    return batch.status !== before;
  }

  /** Reads the input file: the batch fails on a malformed file, else goes in progress. */
  private validate(batch: BatchRecord, at: number): void {
    const read = readInputLines(this.contents.get(batch.input_file_id), batch.input_file_id, batch.endpoint);
    const errors = 'errors' in read ? read.errors : [];
    if (batch.fate === 'fail_validation')
      errors.unshift(validationFailure(batch, 'model' in read ? read.model : null));
    if (errors.length) {
      batch.errors = errors.slice(0, MAX_LISTED_ERRORS);
      batch.status = 'failed';
      batch.at.failed = at;
      return;
    }
    if ('errors' in read) return;
    const { model, customIds, bodies } = read;
    batch.model = model;
    batch.total = customIds.length;
    batch.customIds = customIds;
    // Which lines will fail is fixed now, so the request counts can show them as they happen.
    const rate = this.opts.failureRate ?? 0;
    bodies.forEach((body, i) => {
      const customId = customIds[i]!;
      const pre = this.opts.precheck(body);
      if (pre) {
        const e = (pre.body as { error?: { message?: string; type?: string; code?: string | null } }).error;
        batch.lineFailures[i] = {
          status: pre.status,
          code: e?.code ?? null,
          message: e?.message ?? `HTTP ${pre.status}`,
          type: e?.type ?? 'invalid_request_error',
        };
        return;
      }
      const k = this.state.pending.failLines.findIndex((f) => f.customId === customId);
      if (k >= 0) {
        const f = this.state.pending.failLines.splice(k, 1)[0]!;
        const status = f.status ?? 500;
        batch.lineFailures[i] = {
          status,
          code: f.code ?? null,
          message: f.message ?? 'simulated batch line failure (scripted)',
          type: status >= 500 ? 'server_error' : 'invalid_request_error',
        };
      } else if (rate > 0 && unit(this.opts.seed, 'batch-line-failure', batch.id, customId) < rate) {
        batch.lineFailures[i] = {
          status: 500,
          code: null,
          message: 'simulated batch line failure: The server had an error processing this request.',
          type: 'server_error',
        };
      }
    });
    batch.status = 'in_progress';
    batch.at.in_progress = at;
  }

  /**
   * The batch's end: output and error files written for the lines done (all of them when it
   * completed), every other line an error with the reason it did not run.
   */
  private finish(batch: BatchRecord, status: 'completed' | 'expired' | 'cancelled', at: number): void {
    batch.status = status;
    batch.at[status] = at;
    const done = status === 'completed' ? batch.total : (batch.doneAtStop ?? 0);
    const input = this.contents
      .get(batch.input_file_id)!
      .toString('utf8')
      .split('\n')
      .filter((t) => t.trim());
    const bodyOf = new Map<string, unknown>();
    for (const text of input) {
      const l = JSON.parse(text) as { custom_id: string; body: unknown };
      bodyOf.set(l.custom_id, l.body);
    }
    const {
      output,
      errors: errorsOut,
      input_tokens,
      output_tokens,
    } = resultLines(this.opts.seed, batch, done, status, bodyOf, this.opts.answer);
    if (this.state.deleted.includes(batch.input_file_id))
      if (!this.state.batches.some((b) => b.input_file_id === batch.input_file_id && !TERMINAL.has(b.status)))
        this.dropFile(batch.input_file_id);
    batch.counts = { completed: output.length, failed: errorsOut.length };
    batch.usage = { input: input_tokens, output: output_tokens };
    const s = this.state.batchStats;
    s.requests += output.length;
    s.failedRequests += errorsOut.length;
    s.promptTokens += input_tokens;
    s.completionTokens += output_tokens;
    if (output.length)
      batch.output_file_id = this.addFile(
        `${batch.id}_output.jsonl`,
        'batch_output',
        Buffer.from(`${output.join('\n')}\n`),
      ).id;
    if (errorsOut.length)
      batch.error_file_id = this.addFile(
        `${batch.id}_error.jsonl`,
        'batch_output',
        Buffer.from(`${errorsOut.join('\n')}\n`),
      ).id;
  }

  /** The Batch object as the API returns it, with the request counts as of now. */
  private view(batch: BatchRecord): BatchObject {
    let counts = batch.counts;
    if (batch.status === 'in_progress' || batch.status === 'finalizing' || batch.status === 'cancelling') {
      const done =
        batch.status === 'finalizing'
          ? batch.total
          : batch.status === 'cancelling'
            ? (batch.doneAtStop ?? 0)
            : this.doneBy(batch, this.now());
      const order = processingOrder(this.opts.seed, batch).slice(0, done);
      const failed = order.filter((i) => batch.lineFailures[i]).length;
      counts = { completed: done - failed, failed };
    }
    return batchObject(batch, this.windowMs, counts);
  }
}

/** The error a batch failed on demand fails validation with: OpenAI's wording for the enqueued-token limit. */
function validationFailure(batch: BatchRecord, model: string | null): BatchError {
  const code = batch.failCode ?? 'simulated_validation_failure';
  const message =
    code === 'token_limit_exceeded'
      ? `Enqueued token limit reached for ${model ?? 'this model'} in organization org-sim. ` +
        'Please try again once some in_progress batches have been completed.'
      : 'The simulator was asked to fail this batch at validation (on demand).';
  return { code, message, param: null, line: null };
}
