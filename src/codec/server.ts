import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/**
 * A Temporal codec server (https://docs.temporal.io/production-deployment/data-encryption): the Web
 * UI and the CLI (`--codec-endpoint`) POST `{"payloads":[...]}` to /encode or /decode, each payload
 * in protobuf JSON form (`metadata` values and `data` base64), and get the same shape back.
 * Paths may carry a prefix (e.g. /{namespace}/decode, as older tools send). The UI calls from the
 * browser, so the configured origins get CORS headers and preflight answers.
 */
export interface CodecServerOptions {
  codec: PayloadCodec;
  port?: number;
  host?: string;
  /** Origins allowed to call from a browser (the Web UI), e.g. http://localhost:8233; '*' for any. */
  corsOrigins?: string[];
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

export interface CodecServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

const DEFAULT_MAX_BODY = 64 * 1024 * 1024;

function fromJson(p: JsonPayload): Payload {
  if (p === null || typeof p !== 'object')
    throw new BadRequest('each payload must be an object with metadata and data');
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (typeof v !== 'string') throw new BadRequest(`payload metadata "${k}" must be a base64 string`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (p.data !== undefined && p.data !== null && typeof p.data !== 'string')
    throw new BadRequest('payload data must be a base64 string');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {}))
    if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

class BadRequest extends Error {}

function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new BadRequest(`request body over ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const origins = opts.corsOrigins ?? [];
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.log ?? (() => undefined);

  const corsHeaders = (req: http.IncomingMessage): Record<string, string> => {
    const origin = req.headers.origin;
    if (!origin) return {};
    const allowed = origins.includes('*') ? '*' : origins.includes(origin) ? origin : undefined;
    if (!allowed) return {};
    const h: Record<string, string> = {
      'Access-Control-Allow-Origin': allowed,
      'Access-Control-Allow-Methods': 'POST, OPTIONS',
      'Access-Control-Allow-Headers': 'content-type, x-namespace, authorization',
      'Access-Control-Max-Age': '600',
      Vary: 'Origin',
    };
    // The UI may send credentials (its "include cross-origin credentials" setting); '*' cannot allow them.
    if (allowed !== '*') h['Access-Control-Allow-Credentials'] = 'true';
    return h;
  };

  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        ...corsHeaders(req),
      });
      res.end(text);
    };
    const url = new URL(req.url ?? '/', 'http://codec');
    const action = /\/(encode|decode)\/?$/.exec(url.pathname)?.[1] as 'encode' | 'decode' | undefined;

    if (req.method === 'OPTIONS') {
      res.writeHead(204, corsHeaders(req));
      res.end();
      return;
    }
    if (req.method === 'GET' && (url.pathname === '/health' || url.pathname === '/')) {
      send(200, { ok: true });
      return;
    }
    if (!action) {
      send(404, { error: 'not found: POST /encode or /decode' });
      return;
    }
    if (req.method !== 'POST') {
      send(405, { error: `${req.method} not allowed: POST /${action}` });
      return;
    }
    void (async () => {
      try {
        const text = await readBody(req, maxBody);
        let body: { payloads?: unknown };
        try {
          body = JSON.parse(text) as { payloads?: unknown };
        } catch {
          throw new BadRequest('body is not JSON');
        }
        if (!body || !Array.isArray(body.payloads)) throw new BadRequest('body must be {"payloads": [...]}');
        const payloads = (body.payloads as JsonPayload[]).map(fromJson);
        const out =
          action === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
        send(200, { payloads: out.map(toJson) });
        log(
          `${action} ${payloads.length} payload(s) (namespace ${String(req.headers['x-namespace'] ?? '-')})`,
        );
      } catch (err) {
        const status = err instanceof BadRequest ? 400 : 422;
        // Codec errors name key ids, never keys.
        const message = (err as Error).message;
        log(`${action} failed: ${message}`);
        if (!res.headersSent) send(status, { error: message });
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8888, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
