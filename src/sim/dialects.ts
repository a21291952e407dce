/**
 * Which structured-output requests the simulator takes, so clients can be tested against the
 * dialects real servers speak (README "Structured output"):
 * - `openai` (default): json_schema, json_object (with or without a schema), or none;
 * - `llama-cpp-python`: refuses json_schema the way llama-cpp-python's server (0.3.16) does (its
 *   request model allows only "text" and "json_object"; FastAPI's validation error is caught by the
 *   server's error handler and answered as HTTP 500 "internal_server_error"; the body below follows
 *   the one a real 0.3.16 server with FastAPI 0.165 sent), and honours a schema sent as
 *   `{"type": "json_object", "schema": ...}`;
 * - `json-object-only`: JSON mode only: json_schema is a 400, a `schema` in json_object a 422;
 * - `prompt-only`: any response_format other than text is a 400.
 */
export const simDialects = ['openai', 'llama-cpp-python', 'json-object-only', 'prompt-only'] as const;
export type SimDialect = (typeof simDialects)[number];

export interface ResponseFormatSeen {
  /** What the request asked for: json_schema, json_object_schema, json_object, text, or none. */
  kind: 'json_schema' | 'json_object_schema' | 'json_object' | 'text' | 'none' | 'other';
  type?: string;
  name?: string;
  schema?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

export function readResponseFormat(format: unknown): ResponseFormatSeen {
  if (format === undefined || format === null) return { kind: 'none' };
  if (!isObject(format)) return { kind: 'other' };
  const type = typeof format.type === 'string' ? format.type : undefined;
  if (type === 'json_schema') {
    const js = isObject(format.json_schema) ? format.json_schema : {};
    return {
      kind: 'json_schema',
      type,
      name: typeof js.name === 'string' ? js.name : undefined,
      schema: isObject(js.schema) ? js.schema : undefined,
    };
  }
  if (type === 'json_object')
    return isObject(format.schema)
      ? { kind: 'json_object_schema', type, schema: format.schema }
      : { kind: 'json_object', type };
  if (type === 'text') return { kind: 'text', type };
  return { kind: 'other', type };
}

export interface Refusal {
  status: number;
  /** The whole JSON body, as that server sends it. */
  body: unknown;
}

/** A refusal of this request's response_format by the dialect, or undefined when it is taken. */
export function refusalFor(dialect: SimDialect, rf: ResponseFormatSeen, raw: unknown): Refusal | undefined {
  switch (dialect) {
    case 'openai':
      return undefined;
    case 'llama-cpp-python': {
      if (
        rf.kind === 'none' ||
        rf.kind === 'text' ||
        rf.kind === 'json_object' ||
        rf.kind === 'json_object_schema'
      )
        return undefined;
      // pydantic's literal_error as FastAPI prints a RequestValidationError, wrapped as a 500.
      const input = rf.type === undefined ? 'None' : `'${rf.type}'`;
      const error = `{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "Input should be 'text' or 'json_object'", 'input': ${input}, 'ctx': {'expected': "'text' or 'json_object'"}}`;
      return {
        status: 500,
        body: {
          error: {
            message: `1 validation error:\n  ${error}\n\n  File "/opt/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions`,
            type: 'internal_server_error',
            param: null,
            code: null,
          },
        },
      };
    }
    case 'json-object-only':
      if (rf.kind === 'json_schema' || rf.kind === 'other')
        return openAiStyle(400, `response_format type '${rf.type ?? '?'}' is not supported by this server`);
      if (rf.kind === 'json_object_schema')
        return {
          status: 422,
          body: {
            detail: [
              {
                type: 'extra_forbidden',
                loc: ['body', 'response_format', 'schema'],
                msg: 'Extra inputs are not permitted',
                input: isObject(raw) ? raw.schema : null,
              },
            ],
          },
        };
      return undefined;
    case 'prompt-only':
      if (rf.kind === 'none' || rf.kind === 'text') return undefined;
      return openAiStyle(400, "'response_format' is not supported by this server");
  }
}

function openAiStyle(status: number, message: string): Refusal {
  return {
    status,
    body: { error: { message, type: 'invalid_request_error', param: 'response_format', code: null } },
  };
}

/** Whether the dialect enforces the schema this request sent. */
export function honoursSchema(dialect: SimDialect, rf: ResponseFormatSeen): boolean {
  if (!rf.schema) return false;
  if (rf.kind === 'json_schema') return dialect === 'openai';
  if (rf.kind === 'json_object_schema') return dialect === 'openai' || dialect === 'llama-cpp-python';
  return false;
}
