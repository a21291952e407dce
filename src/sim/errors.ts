import http from 'node:http';

/** An HTTP error the simulator answers in OpenAI's error shape ({error: {message, type, param, code}}). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export function errorBody(
  status: number,
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message, type, param, code } };
}

/** The body, type and code a real server sends with each simulated error status. */
export const ERROR_KIND: Record<number, { type: string; code: string | null; message: string }> = {
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

export function errorKind(status: number): { type: string; code: string | null; message: string } {
  return (
    ERROR_KIND[status] ?? {
      type: status >= 500 ? 'server_error' : 'invalid_request_error',
      code: null,
      message: `simulated HTTP ${status}`,
    }
  );
}

/** The request body as bytes, refused with a 413 past `limit`. */
export function readRaw(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) reject(new HttpError(413, 'request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}
