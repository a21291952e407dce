import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { structuredDialects, type StructuredDialect } from '../schemas/config';

/**
 * Structured-output dialects, and how `structuredOutput: "auto"` picks one.
 *
 * Servers that call themselves OpenAI-compatible take structured output in different shapes:
 * OpenAI, vLLM, llama-server, Ollama and LM Studio take `json_schema`; llama-cpp-python's server
 * refuses it (HTTP 500, a request-validation error) but enforces a schema sent as
 * `{"type": "json_object", "schema": ...}`; some only have JSON mode; some nothing. In auto mode a
 * call tries the dialects in that order and steps down only when the server rejects the request
 * shape (src/llm/errors.ts, isMalformedRequest); the first dialect the server answers is remembered
 * for the (endpoint, model) in this worker process, and later calls use only that one (a refusal
 * then is about the request, and fails fast). Explicit settings are used as they are.
 */
export type ResponseFormatParams = Pick<ChatCompletionCreateParamsNonStreaming, 'response_format'>;

/** What `auto` tries, best first. */
export const AUTO_ORDER: readonly StructuredDialect[] = structuredDialects;

/** The request fields for a dialect (`text` sends none: the prompt carries the schema). */
export function responseFormatFor(
  dialect: StructuredDialect,
  name: string,
  schema: Record<string, unknown>,
): ResponseFormatParams {
  switch (dialect) {
    case 'json_schema':
      return { response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } };
    case 'json_object_schema':
      // Not in the SDK's types: llama-cpp-python's (Anyscale-style) extension of JSON mode.
      return {
        response_format: {
          type: 'json_object',
          schema,
        } as unknown as ResponseFormatParams['response_format'],
      };
    case 'json_object':
      return { response_format: { type: 'json_object' } };
    case 'text':
      return {};
  }
}

/** Every dialect but json_schema relies on the prompt too (weak enforcement, or none). */
export function schemaInPrompt(dialect: StructuredDialect): boolean {
  return dialect !== 'json_schema';
}

// --- What this worker process learnt -------------------------------------------------------------

const decided = new Map<string, StructuredDialect>();
const probing = new Map<string, Promise<void>>();
/** Lets the callers waiting on a probe go as soon as the dialect is known (not when the call ends). */
const releases = new Map<string, () => void>();
const keyOf = (baseURL: string, model: string) => `${baseURL}\u0000${model}`;

/** The dialect auto mode settled on for this endpoint and model, if any yet. */
export function knownDialect(baseURL: string, model: string): StructuredDialect | undefined {
  return decided.get(keyOf(baseURL, model));
}

/** Records the dialect a server answered in auto mode. */
export function rememberDialect(baseURL: string, model: string, dialect: StructuredDialect): void {
  const key = keyOf(baseURL, model);
  decided.set(key, dialect);
  releases.get(key)?.();
}

/** For tests and `codeclm check`: start from scratch. */
export function forgetDialects(): void {
  decided.clear();
  batchProbes.clear();
}

/**
 * Batch mode: the dialect is decided before the first batch line is written, by one short online
 * probe per endpoint and model in this process (src/llm/client.ts sends the first request online
 * with max_tokens 1, in each dialect until one is taken). Without it every line of the first
 * batches would try json_schema, be refused line by line a whole batch turnaround later, and step
 * down into the next batch. Concurrent first calls share the one probe. A probe that decided
 * nothing (the endpoint was down, or refused every dialect) is remembered for a minute, in which the
 * calls step down through the dialects in their batches as before.
 */
const batchProbes = new Map<string, Promise<StructuredDialect | undefined>>();
const INCONCLUSIVE_KEPT_MS = 60_000;

export async function probeOnceForBatch(
  baseURL: string,
  model: string,
  probe: () => Promise<StructuredDialect | undefined>,
  signal?: AbortSignal,
): Promise<StructuredDialect | undefined> {
  const key = keyOf(baseURL, model);
  const known = decided.get(key);
  if (known) return known;
  let p = batchProbes.get(key);
  if (!p) {
    const mine: Promise<StructuredDialect | undefined> = probe().then(
      (dialect) => {
        if (dialect) rememberDialect(baseURL, model, dialect);
        else forgetLater(key, mine);
        return dialect;
      },
      () => {
        forgetLater(key, mine);
        return undefined;
      },
    );
    batchProbes.set(key, (p = mine));
  }
  // A caller cancelled while it waits goes at once; the probe goes on for the others.
  if (signal)
    await untilSettledOrAborted(
      p.then(() => undefined),
      signal,
    );
  return p;
}

function forgetLater(key: string, p: Promise<StructuredDialect | undefined>): void {
  setTimeout(() => {
    if (batchProbes.get(key) === p) batchProbes.delete(key);
  }, INCONCLUSIVE_KEPT_MS).unref?.();
}

/**
 * Runs `probe` alone for an endpoint whose dialect is not known yet: concurrent first calls (a run
 * starts dozens at once) would otherwise each spend a rejected request finding the same answer.
 * Callers that waited re-read knownDialect(); if the probe decided nothing (it failed for another
 * reason), the next waiter probes.
 */
export async function probeAlone<T>(
  baseURL: string,
  model: string,
  probe: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const key = keyOf(baseURL, model);
  for (;;) {
    const running = probing.get(key);
    if (!running || decided.has(key)) break;
    await untilSettledOrAborted(running, signal);
  }
  if (decided.has(key)) return probe();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  probing.set(key, mine);
  releases.set(key, release);
  try {
    return await probe();
  } finally {
    if (probing.get(key) === mine) {
      probing.delete(key);
      releases.delete(key);
    }
    release();
  }
}

function untilSettledOrAborted(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
