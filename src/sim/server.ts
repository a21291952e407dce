import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseScript, RpmWindow, scriptMatches, type MalformedKind, type ScriptItem } from './faults';
import { hash32, prng, requestLatencyMs, unit } from './prng';
import { refusalFor, type SimDialect } from './dialects';
import { completionObject, readChatRequest, replyFor } from './completion';
import { errorBody, errorKind, HttpError, parseJson, readRaw } from './errors';
import {
  BatchStore,
  MAX_BATCH_FILE_BYTES,
  type BatchStats,
  type FileStats,
  type LineAnswer,
  type SimBatchOptions,
} from './batches';

/**
 * The offline OpenAI-compatible simulator: a real HTTP server for the Chat Completions subset the
 * project uses, and OpenAI's Files + Batch API for it. It is a test, benchmark and demo backend,
 * never a model: every reply says so in system_fingerprint "codeclm-sim" and the
 * x-codeclm-simulator header.
 *
 * Endpoints: POST /v1/chat/completions (and /chat/completions), GET /v1/models (and /models);
 * POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content; POST/GET /v1/batches,
 * GET /v1/batches/{id}, POST /v1/batches/{id}/cancel (src/sim/batches.ts);
 * control: POST /_sim/script, GET /_sim/requests, GET /_sim/stats, POST /_sim/reset,
 * POST /_sim/batch-faults, POST /_sim/batches/{id}/expire.
 */
export interface SimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  seed?: number;
  /** Mean of a lognormal latency per request, ms. */
  latencyMs?: number;
  /** Fraction of requests answered 429 (with Retry-After), 500 or 503. */
  errorRate?: number;
  /** Fraction of JSON replies that come back broken, fenced or wrapped in chat. */
  malformedRate?: number;
  /** Fraction of replies cut short with finish_reason "length". */
  truncateRate?: number;
  /** Requests-per-minute cap (rolling 60 s window); over it, 429 with Retry-After. */
  rpm?: number;
  /** Which structured-output requests it takes, like which server (src/sim/dialects.ts). */
  dialect?: SimDialect;
  /** Decode repeats itself (tests of duplicate removal): shares of word-for-word copies and paraphrases. */
  repeats?: { exact?: number; paraphrase?: number };
  /** When set, every /v1 request must carry `Authorization: Bearer <apiKey>` (else 401), like a hosted API. */
  apiKey?: string;
  /** When set, /v1/models lists these and a chat request for any other model gets 404 model_not_found. */
  models?: string[];
  /** The Batch API's knobs: completion delay, partial failures, expiry and validation failures on demand. */
  batch?: SimBatchOptions;
  /** Keeps files and batches (and their counts) across a restart of the simulator. */
  stateDir?: string;
  /** List prices per million tokens, for the cost in the stats (batch: `batchRatio` of online, default 0.5). */
  prices?: SimPrices;
}

export interface SimPrices {
  inputPerMTok?: number;
  outputPerMTok?: number;
  batchRatio?: number;
}

/** The simulator's default list prices, USD per million tokens (a batch costs half). */
export const DEFAULT_SIM_PRICES = { inputPerMTok: 1, outputPerMTok: 4, batchRatio: 0.5 };

export interface SimRequestLog {
  time: string;
  model: string;
  task: string;
  status: number;
  /** What fault, if any, shaped this response (e.g. "rpm", "scripted:429", "malformed:fenced"). */
  fault?: string;
  /** The response_format asked for: json_schema, json_object_schema, json_object or text (absent: none). */
  format?: string;
  ms: number;
}

export interface SimStats {
  /** Online chat completions (the Batch API's lines are in `batch`). */
  requests: number;
  byStatus: Record<string, number>;
  byTask: Record<string, number>;
  faults: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  /** Batches created (each POST /v1/batches that was accepted) and the lines they answered. */
  batch: BatchStats;
  files: FileStats;
  prices: {
    online: { inputPerMTok: number; outputPerMTok: number };
    batch: { inputPerMTok: number; outputPerMTok: number };
  };
  /** USD at those prices: tokens answered online and in batches. */
  cost: { online: number; batch: number; total: number };
}

/** The online counters (SimStats without the Batch API's part). */
type OnlineStats = Pick<
  SimStats,
  'requests' | 'byStatus' | 'byTask' | 'faults' | 'promptTokens' | 'completionTokens'
>;

const MALFORMED_KINDS: readonly MalformedKind[] = ['broken', 'fenced', 'chatty'];

export interface Simulator {
  /** Base URL ending in /v1: give it to the openai SDK as baseURL. */
  url: string;
  port: number;
  close(): Promise<void>;
  requests(): SimRequestLog[];
  stats(): SimStats;
}

const MAX_BODY = 20 * 1024 * 1024;
const LOG_CAP = 50_000;
/** Distinct request bodies remembered for latency draws (forgotten all at once beyond this). */
const SEEN_CAP = 200_000;
/** An upload may carry a whole batch file (200 MB) and its multipart framing. */
const MAX_UPLOAD = MAX_BATCH_FILE_BYTES + 1024 * 1024;

async function readBody(req: http.IncomingMessage): Promise<string> {
  return (await readRaw(req, MAX_BODY)).toString('utf8');
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'x-codeclm-simulator': '1', ...headers });
  res.end(text);
}

/** A multipart/form-data upload (what the SDKs send to POST /v1/files), read with the fetch API's parser. */
async function readUpload(
  req: http.IncomingMessage,
): Promise<{ filename: string; purpose: string; content: Buffer }> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('multipart/form-data'))
    throw new HttpError(
      400,
      `expected a multipart/form-data upload (file, purpose), got content-type '${type}'`,
    );
  const raw = await readRaw(req, MAX_UPLOAD);
  let form: FormData;
  try {
    form = await new Request('http://sim/upload', {
      method: 'POST',
      headers: { 'content-type': type },
      body: raw,
    }).formData();
  } catch (err) {
    throw new HttpError(400, `could not read the multipart upload: ${(err as Error).message}`);
  }
  const file = form.get('file');
  const purpose = form.get('purpose');
  if (typeof purpose !== 'string' || !purpose)
    throw new HttpError(
      400,
      "Missing required parameter: 'purpose'.",
      'invalid_request_error',
      null,
      'purpose',
    );
  if (!file || typeof file === 'string')
    throw new HttpError(400, "Missing required parameter: 'file'.", 'invalid_request_error', null, 'file');
  return { filename: file.name || 'upload', purpose, content: Buffer.from(await file.arrayBuffer()) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const seed = opts.seed ?? 0;
  const dialect = opts.dialect ?? 'openai';
  const host = opts.host ?? '127.0.0.1';
  let faultRand = prng(hash32(seed, 'faults'));
  let script: ScriptItem[] = [];
  let log: SimRequestLog[] = [];
  let stats: OnlineStats = emptyStats();
  const window = new RpmWindow(opts.rpm);
  const sockets = new Set<import('node:net').Socket>();
  // How often each request body was seen: a repeated request (a retry) draws a fresh latency.
  let seen = new Map<number, number>();

  /**
   * The latency of one request: lognormal, drawn from (seed, request body, how many times that body
   * was seen before). Independent of arrival order, so the bench's two sides (same requests, in
   * different orders) see the same latencies and their comparison measures orchestration, not luck.
   */
  function latencyFor(raw: string): number {
    if (!opts.latencyMs) return 0;
    const key = hash32(seed, 'latency', raw);
    const nth = seen.get(key) ?? 0;
    if (seen.size >= SEEN_CAP) seen = new Map();
    seen.set(key, nth + 1);
    return requestLatencyMs(opts.latencyMs, key, nth);
  }

  function emptyStats(): OnlineStats {
    return { requests: 0, byStatus: {}, byTask: {}, faults: {}, promptTokens: 0, completionTokens: 0 };
  }

  function record(entry: SimRequestLog, promptTokens = 0, completionTokens = 0): void {
    log.push(entry);
    if (log.length > LOG_CAP) log = log.slice(-LOG_CAP);
    stats.requests++;
    stats.byStatus[entry.status] = (stats.byStatus[entry.status] ?? 0) + 1;
    stats.byTask[entry.task] = (stats.byTask[entry.task] ?? 0) + 1;
    if (entry.fault) stats.faults[entry.fault] = (stats.faults[entry.fault] ?? 0) + 1;
    stats.promptTokens += promptTokens;
    stats.completionTokens += completionTokens;
  }

  async function chat(req: http.IncomingMessage, res: http.ServerResponse, started: number): Promise<void> {
    const raw = await readBody(req);
    const body = parseJson(raw);
    const chatReq = readChatRequest(body, opts.models);
    const { model, format, rec } = chatReq;

    // A request shape this dialect's server refuses is refused before anything else happens, as a
    // server's request validation does (no script item, fault draw or latency spent on it).
    const refusal = refusalFor(dialect, chatReq.rf, (body as { response_format?: unknown }).response_format);
    if (refusal) {
      record({
        time: new Date(started).toISOString(),
        model,
        task: rec.name,
        status: refusal.status,
        fault: `dialect:${dialect}`,
        ...format,
        ms: Date.now() - started,
      });
      return send(res, refusal.status, refusal.body);
    }

    // The fault draws happen for every request, in a fixed order, so the fault sequence depends
    // only on the seed and the order of requests. Latency depends on the request itself (see
    // latencyFor), so two clients sending the same requests in any order wait the same times.
    const draws = {
      latency: latencyFor(raw),
      error: faultRand(),
      errorKind: faultRand(),
      malformed: faultRand(),
      malformedKind: faultRand(),
      truncate: faultRand(),
    };
    const idx = script.findIndex((item) => scriptMatches(item, model, rec.name));
    const scripted = idx >= 0 ? script.splice(idx, 1)[0] : undefined;

    const delay = scripted?.delayMs ?? draws.latency;
    if (delay > 0) await sleep(delay);
    // (req.destroyed is true once the body is read; the socket tells whether the client is still there.)
    if (res.destroyed || !res.socket || res.socket.destroyed) {
      record({
        time: new Date(started).toISOString(),
        model,
        task: rec.name,
        status: 499,
        fault: 'client-closed',
        ms: Date.now() - started,
      });
      return;
    }
    const logEntry = (status: number, fault?: string): SimRequestLog => ({
      time: new Date(started).toISOString(),
      model,
      task: rec.name,
      status,
      ...(fault ? { fault } : {}),
      ...format,
      ms: Date.now() - started,
    });

    if (scripted?.reset) {
      record(logEntry(0, 'scripted:reset'));
      req.socket.destroy();
      return;
    }
    const fail = (
      status: number,
      fault: string,
      extra: { retryAfter?: number; retryAfterMs?: number; code?: string; message?: string } = {},
    ) => {
      const kind = errorKind(status);
      const headers: Record<string, string> = {};
      if (extra.retryAfterMs !== undefined) headers['retry-after-ms'] = String(extra.retryAfterMs);
      if (extra.retryAfter !== undefined) headers['retry-after'] = String(extra.retryAfter);
      record(logEntry(status, fault));
      send(
        res,
        status,
        errorBody(status, extra.message ?? kind.message, kind.type, extra.code ?? kind.code),
        headers,
      );
    };
    if (scripted?.status) {
      const retryAfter =
        scripted.retryAfter ??
        (scripted.status === 429 && scripted.retryAfterMs === undefined ? 1 : undefined);
      return fail(scripted.status, `scripted:${scripted.status}`, { ...scripted, retryAfter });
    }
    const wait = scripted ? undefined : window.admit(Date.now());
    if (wait !== undefined)
      return fail(429, 'rpm', {
        retryAfter: wait,
        message: `simulated rate limit: over ${opts.rpm} requests per minute`,
      });
    if (!scripted && draws.error < (opts.errorRate ?? 0)) {
      const status = [429, 500, 503][Math.floor(draws.errorKind * 3)]!;
      return fail(status, `random:${status}`, status === 429 ? { retryAfter: 1 } : {});
    }

    const reply = replyFor(
      seed,
      dialect,
      chatReq,
      { repeats: opts.repeats },
      {
        scripted,
        malformed:
          draws.malformed < (opts.malformedRate ?? 0)
            ? MALFORMED_KINDS[Math.floor(draws.malformedKind * 3)]
            : undefined,
        truncate: draws.truncate < (opts.truncateRate ?? 0),
      },
    );
    record(logEntry(200, reply.fault), reply.promptTokens, reply.completionTokens);
    send(
      res,
      200,
      completionObject(
        `chatcmpl-sim-${hash32(seed, started, stats.requests).toString(16)}`,
        started,
        model,
        reply,
      ),
    );
  }

  /**
   * One line of a batch, answered by the online generator (so a request gets the same reply either
   * way). Random malformed and truncated replies are drawn from the request itself, since a
   * batch's lines have no arrival order; the online error rate and rpm cap do not apply.
   */
  function answerLine(body: unknown, id: string): LineAnswer {
    const chatReq = readChatRequest(body, opts.models);
    const draw = (what: string) => unit(seed, 'batch', what, chatReq.key);
    const reply = replyFor(
      seed,
      dialect,
      chatReq,
      { repeats: opts.repeats },
      {
        malformed:
          draw('malformed') < (opts.malformedRate ?? 0)
            ? MALFORMED_KINDS[Math.floor(draw('malformed-kind') * 3)]
            : undefined,
        truncate: draw('truncate') < (opts.truncateRate ?? 0),
      },
    );
    return {
      status: 200,
      body: completionObject(id, Date.now(), chatReq.model, reply),
      promptTokens: reply.promptTokens,
      completionTokens: reply.completionTokens,
    };
  }

  /** A line the online endpoint would refuse gets that refusal as its response. */
  function precheckLine(body: unknown): { status: number; body: unknown } | undefined {
    try {
      const chatReq = readChatRequest(body, opts.models);
      return refusalFor(dialect, chatReq.rf, (body as { response_format?: unknown }).response_format);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return { status: err.status, body: errorBody(err.status, err.message, err.type, err.code, err.param) };
    }
  }

  const batches = new BatchStore({
    ...opts.batch,
    seed,
    stateDir: opts.stateDir,
    answer: answerLine,
    precheck: precheckLine,
  });
  const prices = {
    online: {
      inputPerMTok: opts.prices?.inputPerMTok ?? DEFAULT_SIM_PRICES.inputPerMTok,
      outputPerMTok: opts.prices?.outputPerMTok ?? DEFAULT_SIM_PRICES.outputPerMTok,
    },
    batch: { inputPerMTok: 0, outputPerMTok: 0 },
  };
  const ratio = opts.prices?.batchRatio ?? DEFAULT_SIM_PRICES.batchRatio;
  prices.batch = {
    inputPerMTok: prices.online.inputPerMTok * ratio,
    outputPerMTok: prices.online.outputPerMTok * ratio,
  };

  function allStats(): SimStats {
    const { batch, files } = batches.stats();
    const usd = (p: { inputPerMTok: number; outputPerMTok: number }, input: number, output: number) =>
      (input * p.inputPerMTok + output * p.outputPerMTok) / 1e6;
    const online = usd(prices.online, stats.promptTokens, stats.completionTokens);
    const inBatch = usd(prices.batch, batch.promptTokens, batch.completionTokens);
    return {
      ...structuredClone(stats),
      batch,
      files,
      prices: structuredClone(prices),
      cost: { online, batch: inBatch, total: online + inBatch },
    };
  }

  /** POST/GET /v1/files..., /v1/batches...: the Files and Batch API. */
  async function filesAndBatches(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: string,
    query: URLSearchParams,
  ): Promise<boolean> {
    const m = req.method;
    let match: RegExpMatchArray | null;
    if (route === '/files' && m === 'POST') {
      const up = await readUpload(req);
      send(res, 200, batches.uploadFile(up.filename, up.purpose, up.content));
    } else if (route === '/files' && m === 'GET') send(res, 200, batches.listFiles(query));
    else if ((match = route.match(/^\/files\/([^/]+)\/content$/)) && m === 'GET') {
      const content = batches.fileContent(decodeURIComponent(match[1]!));
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(content.length),
        'x-codeclm-simulator': '1',
      });
      res.end(content);
    } else if ((match = route.match(/^\/files\/([^/]+)$/)) && m === 'GET')
      send(res, 200, batches.getFile(decodeURIComponent(match[1]!)));
    else if ((match = route.match(/^\/files\/([^/]+)$/)) && m === 'DELETE')
      send(res, 200, batches.deleteFile(decodeURIComponent(match[1]!)));
    else if (route === '/batches' && m === 'POST')
      send(res, 200, batches.createBatch(parseJson(await readBody(req))));
    else if (route === '/batches' && m === 'GET') send(res, 200, batches.listBatches(query));
    else if ((match = route.match(/^\/batches\/([^/]+)$/)) && m === 'GET')
      send(res, 200, batches.getBatch(decodeURIComponent(match[1]!)));
    else if ((match = route.match(/^\/batches\/([^/]+)\/cancel$/)) && m === 'POST')
      send(res, 200, batches.cancelBatch(decodeURIComponent(match[1]!)));
    else return false;
    return true;
  }

  async function control(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/_sim/requests') return send(res, 200, log);
    if (req.method === 'GET' && path === '/_sim/stats') return send(res, 200, allStats());
    if (req.method === 'POST' && path === '/_sim/script') {
      let items: ScriptItem[];
      try {
        items = parseScript(parseJson(await readBody(req)));
      } catch (err) {
        throw err instanceof HttpError ? err : new HttpError(400, `bad script: ${(err as Error).message}`);
      }
      script.push(...items);
      return send(res, 200, { queued: script.length });
    }
    if (req.method === 'POST' && path === '/_sim/batch-faults')
      return send(res, 200, { pending: batches.addFaults(parseJson(await readBody(req))) });
    const expire = path.match(/^\/_sim\/batches\/([^/]+)\/expire$/);
    if (req.method === 'POST' && expire)
      return send(res, 200, batches.expireNow(decodeURIComponent(expire[1]!)));
    if (req.method === 'POST' && path === '/_sim/reset') {
      script = [];
      log = [];
      stats = emptyStats();
      window.reset();
      faultRand = prng(hash32(seed, 'faults'));
      seen = new Map();
      batches.reset();
      return send(res, 200, { reset: true });
    }
    throw new HttpError(404, `no such simulator control endpoint: ${req.method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const [rawPath, rawQuery] = (req.url ?? '/').split('?');
    const path = rawPath!.replace(/\/+$/, '');
    const handle = async () => {
      if (opts.apiKey && !path.startsWith('/_sim/') && req.headers.authorization !== `Bearer ${opts.apiKey}`)
        throw new HttpError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key');
      if (req.method === 'POST' && (path === '/v1/chat/completions' || path === '/chat/completions'))
        return chat(req, res, started);
      if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
        return send(res, 200, {
          object: 'list',
          data: (opts.models ?? ['codeclm-sim-strong', 'codeclm-sim-target']).map((id) => ({
            id,
            object: 'model',
            created: 0,
            owned_by: 'codeclm-sim (offline simulator, not a model)',
          })),
        });
      }
      if (path.startsWith('/_sim/')) return control(req, res, path);
      const route = path.replace(/^\/v1(?=\/)/, '');
      if (await filesAndBatches(req, res, route, new URLSearchParams(rawQuery ?? ''))) return;
      throw new HttpError(
        404,
        `unknown endpoint ${req.method} ${path} (this is the codeclm offline simulator)`,
      );
    };
    handle().catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const e =
        err instanceof HttpError
          ? err
          : new HttpError(500, `simulator error: ${(err as Error).message}`, 'server_error');
      send(res, e.status, errorBody(e.status, e.message, e.type, e.code, e.param));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    requests: () => [...log],
    stats: allStats,
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets would hold close() open; this is a test server, so cut them.
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
