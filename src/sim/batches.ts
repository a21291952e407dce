import fs from 'node:fs';
import path from 'node:path';
import { HttpError } from './errors';
import { hash32, unit } from './prng';

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
export const BATCH_ENDPOINT = '/v1/chat/completions';
export const MAX_BATCH_REQUESTS = 50_000;
export const MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024;
const FILE_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];
const MAX_LISTED_ERRORS = 100;
const DAY_MS = 24 * 3600 * 1000;
const TERMINAL = new Set(['failed', 'completed', 'expired', 'cancelled']);

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
}

interface FileRecord {
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

type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

interface BatchRecord {
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

interface PersistedState {
  version: 1;
  counter: number;
  files: FileRecord[];
  batches: BatchRecord[];
  batchStats: BatchStats;
  fileStats: FileStats;
  pending: { expire: number; failValidation: number; failLines: LineFailure[] };
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

const secs = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

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
      fileStats: { uploaded: 0, bytes: 0 },
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
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new HttpError(400, 'request body must be a JSON object');
    const b = body as Record<string, unknown>;
    const bad = (message: string, param: string) =>
      new HttpError(400, message, 'invalid_request_error', null, param);
    if (typeof b.input_file_id !== 'string' || !b.input_file_id)
      throw bad("Missing required parameter: 'input_file_id'.", 'input_file_id');
    if (typeof b.endpoint !== 'string') throw bad("Missing required parameter: 'endpoint'.", 'endpoint');
    if (b.endpoint !== BATCH_ENDPOINT)
      throw bad(
        `Invalid value for 'endpoint': '${b.endpoint}'. The simulator serves batches for '${BATCH_ENDPOINT}' only.`,
        'endpoint',
      );
    if (b.completion_window !== '24h')
      throw bad(
        `Invalid value for 'completion_window': ${JSON.stringify(b.completion_window)}. Supported values are: '24h'.`,
        'completion_window',
      );
    const metadata = readMetadata(b.metadata);
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
    if (fate === 'fail_validation') p.failValidation--;
    else if (fate === 'expire') p.expire--;
    const batch: BatchRecord = {
      id: this.nextId('batch_'),
      endpoint: b.endpoint,
      input_file_id: file.id,
      completion_window: '24h',
      metadata,
      status: 'validating',
      createdMs: this.now(),
      at: {},
      fate,
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
        'expected {"expire"?: N, "failValidation"?: N, "failLines"?: [custom_id | {customId, status, code, message}]}',
      );
    const b = body as Record<string, unknown>;
    const known = new Set(['expire', 'failValidation', 'failLines']);
    const extra = Object.keys(b).filter((k) => !known.has(k));
    if (extra.length) throw new HttpError(400, `unknown key(s) ${extra.join(', ')}`);
    const count = (k: string) => {
      const v = b[k];
      if (v === undefined) return 0;
      if (!Number.isInteger(v) || (v as number) < 0) throw new HttpError(400, `${k} must be an integer >= 0`);
      return v as number;
    };
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
    const content = this.contents.get(batch.input_file_id);
    const errors: BatchError[] = [];
    const customIds: string[] = [];
    const models = new Set<string>();
    const bodies: unknown[] = [];
    if (batch.fate === 'fail_validation')
      errors.push({
        code: 'simulated_validation_failure',
        message: 'The simulator was asked to fail this batch at validation (on demand).',
        param: null,
        line: null,
      });
    if (!content)
      errors.push({
        code: 'file_not_found',
        message: `Input file ${batch.input_file_id} is gone.`,
        param: 'input_file_id',
        line: null,
      });
    else if (content.length > MAX_BATCH_FILE_BYTES)
      errors.push({
        code: 'file_too_large',
        message: `The input file is ${content.length} bytes; a batch takes at most ${MAX_BATCH_FILE_BYTES}.`,
        param: 'input_file_id',
        line: null,
      });
    else {
      const lines = content.toString('utf8').split('\n');
      const seen = new Set<string>();
      lines.forEach((text, i) => {
        const line = i + 1;
        if (!text.trim()) return;
        const err = (code: string, message: string, param: string | null = null) =>
          errors.push({ code, message, param, line });
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return err('invalid_json_line', `Line ${line} is not valid JSON.`);
        }
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
          return err('invalid_request', `Line ${line} is not a JSON object.`);
        const l = parsed as Record<string, unknown>;
        if (typeof l.custom_id !== 'string' || !l.custom_id)
          return err('missing_required_parameter', `Line ${line} has no custom_id.`, 'custom_id');
        if (seen.has(l.custom_id))
          return err(
            'duplicate_custom_id',
            `The custom_id '${l.custom_id}' on line ${line} is not unique in this batch.`,
            'custom_id',
          );
        seen.add(l.custom_id);
        if (l.method !== 'POST')
          return err('invalid_method', `Line ${line}: method must be 'POST'.`, 'method');
        if (l.url !== batch.endpoint)
          return err(
            'mismatched_endpoint',
            `Line ${line}: url '${String(l.url)}' does not match the batch's endpoint '${batch.endpoint}'.`,
            'url',
          );
        if (!l.body || typeof l.body !== 'object' || Array.isArray(l.body))
          return err('invalid_request', `Line ${line}: body must be a JSON object.`, 'body');
        const model = (l.body as Record<string, unknown>).model;
        if (typeof model !== 'string' || !model)
          return err('missing_required_parameter', `Line ${line}: body.model is required.`, 'body.model');
        models.add(model);
        if (models.size > 1)
          return err(
            'mismatched_model',
            `Line ${line}: model '${model}' differs from the rest of the file; a batch's requests must all use one model.`,
            'body.model',
          );
        customIds.push(l.custom_id);
        bodies.push(l.body);
      });
      if (!errors.length && customIds.length === 0)
        errors.push({
          code: 'empty_file',
          message: 'The input file has no requests.',
          param: 'input_file_id',
          line: null,
        });
      if (customIds.length > MAX_BATCH_REQUESTS)
        errors.push({
          code: 'too_many_requests',
          message: `The input file has ${customIds.length} requests; a batch takes at most ${MAX_BATCH_REQUESTS}.`,
          param: 'input_file_id',
          line: null,
        });
    }
    if (errors.length) {
      batch.errors = errors.slice(0, MAX_LISTED_ERRORS);
      batch.status = 'failed';
      batch.at.failed = at;
      return;
    }
    batch.model = [...models][0] ?? null;
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
    const order = processingOrder(this.opts.seed, batch);
    const output: string[] = [];
    const errorsOut: string[] = [];
    let input_tokens = 0;
    let output_tokens = 0;
    order.forEach((i, k) => {
      const customId = batch.customIds[i]!;
      const lineId = `batch_req_${hash32(this.opts.seed, batch.id, customId).toString(16).padStart(8, '0')}${i.toString(16)}`;
      const requestId = `req_${hash32(this.opts.seed, 'request', batch.id, customId).toString(16).padStart(8, '0')}`;
      if (k >= done) {
        const code = status === 'expired' ? 'batch_expired' : 'batch_cancelled';
        const message =
          status === 'expired'
            ? 'This request could not be executed before the completion window expired.'
            : 'This request was not executed because the batch was cancelled.';
        errorsOut.push(
          JSON.stringify({ id: lineId, custom_id: customId, response: null, error: { code, message } }),
        );
        return;
      }
      const failure = batch.lineFailures[i];
      if (failure) {
        errorsOut.push(
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
      const answer = this.opts.answer(bodyOf.get(customId), `chatcmpl-${lineId}`);
      const line = JSON.stringify({
        id: lineId,
        custom_id: customId,
        response: { status_code: answer.status, request_id: requestId, body: answer.body },
        error: null,
      });
      if (answer.status === 200) {
        output.push(line);
        input_tokens += answer.promptTokens;
        output_tokens += answer.completionTokens;
      } else errorsOut.push(line);
    });
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

  /** The Batch object as the API returns it. */
  private view(batch: BatchRecord): { id: string } & Record<string, unknown> {
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
      expires_at: secs(batch.createdMs + this.windowMs),
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
}

/**
 * The order the lines of a batch run in (and are written to its output file): fixed by seed,
 * batch and custom_id, and not the input order, as the API says of its output files.
 */
function processingOrder(seed: number, batch: BatchRecord): number[] {
  return batch.customIds
    .map((id, i) => ({ i, key: hash32(seed, 'order', batch.id, id) }))
    .sort((a, b) => a.key - b.key || a.i - b.i)
    .map((x) => x.i);
}

function readMetadata(raw: unknown): Record<string, string> | null {
  if (raw === undefined || raw === null) return null;
  const bad = (message: string) => new HttpError(400, message, 'invalid_request_error', null, 'metadata');
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw bad("Invalid type for 'metadata': expected an object.");
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 16) throw bad(`Invalid 'metadata': at most 16 keys, got ${entries.length}.`);
  for (const [k, v] of entries) {
    if (k.length > 64)
      throw bad(`Invalid 'metadata': key '${k.slice(0, 20)}...' is longer than 64 characters.`);
    if (typeof v !== 'string') throw bad(`Invalid 'metadata.${k}': expected a string.`);
    if (v.length > 512) throw bad(`Invalid 'metadata.${k}': longer than 512 characters.`);
  }
  return raw as Record<string, string>;
}

/** A cursor page ({object: "list", data, first_id, last_id, has_more}) after `after`, `limit` long. */
function page<T extends { id: string }>(
  items: T[],
  query: URLSearchParams,
  defaultLimit: number,
  max: number,
): unknown {
  const limitText = query.get('limit');
  const limit = limitText === null ? defaultLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw new HttpError(
      400,
      `'limit' must be an integer from 1 to ${max}, got '${limitText}'`,
      'invalid_request_error',
      null,
      'limit',
    );
  const after = query.get('after');
  let start = 0;
  if (after) {
    const i = items.findIndex((x) => x.id === after);
    if (i < 0)
      throw new HttpError(
        400,
        `'after': no object with id '${after}' in this list`,
        'invalid_request_error',
        null,
        'after',
      );
    start = i + 1;
  }
  const data = items.slice(start, start + limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  };
}
