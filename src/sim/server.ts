import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { estimateTokens, generate } from './generate';
import {
  malform,
  parseScript,
  RpmWindow,
  scriptMatches,
  truncate,
  type MalformedKind,
  type ScriptItem,
} from './faults';
import { hash32, prng, requestLatencyMs } from './prng';
import { recognise, type ChatBodyMessage } from './recognise';
import {
  honoursSchema,
  readResponseFormat,
  refusalFor,
  type ResponseFormatSeen,
  type SimDialect,
} from './dialects';
import { fitsSchema, valueForSchema } from './schemaValue';
import type { Generated } from './generate';

/**
 * The offline OpenAI-compatible simulator: a real HTTP server for the Chat Completions subset the
 * project uses. It is a test, benchmark and demo backend, never a model: every reply says so in
 * system_fingerprint "codeclm-sim" and the x-codeclm-simulator header.
 *
 * Endpoints: POST /v1/chat/completions (and /chat/completions), GET /v1/models (and /models);
 * control: POST /_sim/script, GET /_sim/requests, GET /_sim/stats, POST /_sim/reset.
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
}

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
  requests: number;
  byStatus: Record<string, number>;
  byTask: Record<string, number>;
  faults: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
}

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

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) reject(new HttpError(413, 'request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
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

function errorBody(status: number, message: string, type: string, code: string | null): unknown {
  return { error: { message, type, param: null, code } };
}

const ERROR_KIND: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: 'invalid_request_error', code: null, message: 'simulated bad request' },
  401: {
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: 'simulated authentication failure',
  },
  404: { type: 'invalid_request_error', code: 'model_not_found', message: 'simulated unknown model' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'simulated rate limit: slow down' },
  500: { type: 'server_error', code: null, message: 'simulated internal server error' },
  503: {
    type: 'server_error',
    code: 'service_unavailable',
    message: 'simulated overload: service unavailable',
  },
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const seed = opts.seed ?? 0;
  const dialect = opts.dialect ?? 'openai';
  const host = opts.host ?? '127.0.0.1';
  let faultRand = prng(hash32(seed, 'faults'));
  let script: ScriptItem[] = [];
  let log: SimRequestLog[] = [];
  let stats: SimStats = emptyStats();
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

  function emptyStats(): SimStats {
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
    const body = parseJson(raw) as Record<string, unknown>;
    if (!body || typeof body !== 'object') throw new HttpError(400, 'request body must be a JSON object');
    const model = body.model;
    const messages = body.messages;
    if (typeof model !== 'string' || !model) throw new HttpError(400, "'model' is required");
    if (opts.models && !opts.models.includes(model))
      throw new HttpError(
        404,
        `The model \`${model}\` does not exist`,
        'invalid_request_error',
        'model_not_found',
      );
    if (!Array.isArray(messages) || messages.length === 0)
      throw new HttpError(400, "'messages' must be a non-empty list");
    const temperature = typeof body.temperature === 'number' ? body.temperature : 1;
    const maxTokens =
      typeof body.max_tokens === 'number'
        ? body.max_tokens
        : typeof body.max_completion_tokens === 'number'
          ? body.max_completion_tokens
          : undefined;
    const rf = readResponseFormat(body.response_format);
    const format = rf.kind === 'none' ? {} : { format: rf.kind };
    const rec = recognise(messages as ChatBodyMessage[], rf.kind === 'json_schema' ? rf.name : undefined);

    // A request shape this dialect's server refuses is refused before anything else happens, as a
    // server's request validation does (no script item, fault draw or latency spent on it).
    const refusal = refusalFor(dialect, rf, body.response_format);
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
      const kind = ERROR_KIND[status] ?? {
        type: status >= 500 ? 'server_error' : 'invalid_request_error',
        code: null,
        message: `simulated HTTP ${status}`,
      };
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

    const gen = inFormat(
      generate(seed, model, temperature, messages as ChatBodyMessage[], rec, {
        repeats: opts.repeats,
      }),
      rf,
      dialect,
      () => prng(hash32(seed, 'schema', raw)),
    );
    let content = scripted?.content ?? gen.content;
    let finish = 'stop';
    let fault: string | undefined = scripted ? 'scripted' : undefined;
    const malformedKind: MalformedKind | undefined =
      scripted?.malformed ??
      (!scripted && gen.json && draws.malformed < (opts.malformedRate ?? 0)
        ? (['broken', 'fenced', 'chatty'] as const)[Math.floor(draws.malformedKind * 3)]
        : undefined);
    if (malformedKind) {
      content = malform(content, malformedKind);
      fault = `malformed:${malformedKind}`;
    }
    const maxChars = maxTokens !== undefined ? maxTokens * 4 : undefined;
    const isRepair = (messages as ChatBodyMessage[]).some((m) => m.role === 'assistant');
    if (maxChars !== undefined && content.length > maxChars && isRepair && !gen.json && !scripted) {
      // Asked again after a cut-off answer: reply with whole sentences that fit, like a model told to be brief.
      content = shorten(content, maxChars);
    }
    if (scripted?.truncate || (!scripted && draws.truncate < (opts.truncateRate ?? 0))) {
      content = truncate(content);
      finish = 'length';
      fault = scripted ? 'scripted:truncate' : 'random:truncate';
    } else if (maxChars !== undefined && content.length > maxChars) {
      content = truncate(content, maxChars);
      finish = 'length';
      fault = 'max_tokens';
    }
    const promptTokens = estimateTokens(
      (messages as ChatBodyMessage[])
        .map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)))
        .join('\n'),
    );
    const completionTokens = estimateTokens(content);
    record(logEntry(200, fault), promptTokens, completionTokens);
    send(res, 200, {
      id: `chatcmpl-sim-${hash32(seed, started, stats.requests).toString(16)}`,
      object: 'chat.completion',
      created: Math.floor(started / 1000),
      model,
      system_fingerprint: 'codeclm-sim',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, refusal: null },
          logprobs: null,
          finish_reason: finish,
        },
      ],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    });
  }

  async function control(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/_sim/requests') return send(res, 200, log);
    if (req.method === 'GET' && path === '/_sim/stats') return send(res, 200, stats);
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
    if (req.method === 'POST' && path === '/_sim/reset') {
      script = [];
      log = [];
      stats = emptyStats();
      window.reset();
      faultRand = prng(hash32(seed, 'faults'));
      seen = new Map();
      return send(res, 200, { reset: true });
    }
    throw new HttpError(404, `no such simulator control endpoint: ${req.method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
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
      send(res, e.status, errorBody(e.status, e.message, e.type, e.code));
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
    stats: () => structuredClone(stats),
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets would hold close() open; this is a test server, so cut them.
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The reply in the shape the request asked for. A schema the dialect enforces gets JSON valid
 * against it: the recognised task's reply if it fits, otherwise a value generated from the schema
 * (src/sim/schemaValue.ts), so any client's schema is honoured. JSON mode gets a JSON object.
 */
function inFormat(
  gen: Generated,
  rf: ResponseFormatSeen,
  dialect: SimDialect,
  rand: () => () => number,
): Generated {
  if (rf.schema && honoursSchema(dialect, rf)) {
    if (gen.json && fitsSchema(JSON.parse(gen.content), rf.schema)) return gen;
    return { content: JSON.stringify(valueForSchema(rf.schema, rand())), json: true };
  }
  if ((rf.kind === 'json_object' || rf.kind === 'json_object_schema') && !gen.json)
    return { content: JSON.stringify({ response: gen.content }), json: true };
  return gen;
}

function shorten(text: string, maxChars: number): string {
  const sentences = text.split(/(?<=[.!?])\s+/);
  let out = '';
  for (const s of sentences) {
    const next = out ? `${out} ${s}` : s;
    if (next.length > maxChars) break;
    out = next;
  }
  return out || text.slice(0, maxChars);
}
