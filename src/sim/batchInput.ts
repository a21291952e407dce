import { HttpError } from './errors';

/**
 * What a batch is made of, checked as the Batch API checks it: the create request (input file,
 * endpoint, completion window, metadata) and the input file's lines (JSON, unique custom_id, POST to
 * the batch's endpoint, one model for the whole file, at most 50,000 requests and 200 MB).
 */
export const BATCH_ENDPOINT = '/v1/chat/completions';
export const MAX_BATCH_REQUESTS = 50_000;
export const MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024;

/** One entry of a failed batch's `errors.data`. */
export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface CreateRequest {
  input_file_id: string;
  endpoint: string;
  metadata: Record<string, string> | null;
}

/** The body of POST /v1/batches, or the 400 the API answers for it. */
export function readCreateRequest(body: unknown): CreateRequest {
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
  return { input_file_id: b.input_file_id, endpoint: b.endpoint, metadata: readMetadata(b.metadata) };
}

export type InputLines = { errors: BatchError[] } | { model: string; customIds: string[]; bodies: unknown[] };

/** The input file's requests, or every problem found in it (with line numbers). */
export function readInputLines(content: Buffer | undefined, fileId: string, endpoint: string): InputLines {
  const errors: BatchError[] = [];
  const customIds: string[] = [];
  const models = new Set<string>();
  const bodies: unknown[] = [];
  if (!content)
    errors.push({
      code: 'file_not_found',
      message: `Input file ${fileId} is gone.`,
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
      if (l.method !== 'POST') return err('invalid_method', `Line ${line}: method must be 'POST'.`, 'method');
      if (l.url !== endpoint)
        return err(
          'mismatched_endpoint',
          `Line ${line}: url '${String(l.url)}' does not match the batch's endpoint '${endpoint}'.`,
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
  if (errors.length) return { errors };
  return { model: [...models][0]!, customIds, bodies };
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
