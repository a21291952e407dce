import { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { LlmFailure } from './types';
import type { UsageCell } from '../schemas/records';

/**
 * Turns what the openai SDK throws into ApplicationFailures that Temporal retry policies understand:
 * rate limits and outages are retryable (rate limits with the server's Retry-After as the next
 * delay), bad requests are not. Messages name role, model and endpoint so an operator can act on
 * them, and never contain the API key.
 */
export interface LlmErrorContext {
  role: string;
  model: string;
  baseURL: string;
  task: string;
  /** Strings to scrub from any message (the API key). Never printed. */
  secrets?: string[];
  /** The call ran for its whole timeout (the SDK cannot always tell a timeout from other failures). */
  timedOut?: boolean;
}

export const MAX_RETRY_DELAY_MS = 5 * 60_000;
export const DEFAULT_RATE_LIMIT_DELAY_MS = 1_000;

/** Removes secrets, URL credentials and key-looking tokens from text that may reach logs. */
export function redact(text: string, secrets: string[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out
    .replace(/\b(sk|pk|rk)-[A-Za-z0-9_*-]{6,}/g, '[redacted]')
    .replace(/(Bearer\s+)[^\s"']+/gi, '$1[redacted]')
    .replace(/(\/\/)[^/@\s]+@/g, '$1[redacted]@');
}

export function describeCall(ctx: LlmErrorContext): string {
  return `${ctx.role} model "${ctx.model}" at ${redact(ctx.baseURL, ctx.secrets)} (task ${ctx.task})`;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined> | undefined;
function header(headers: HeaderBag, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Retry-After as ms: retry-after-ms, or retry-after in seconds or as an HTTP date; capped. */
export function retryAfterMs(headers: HeaderBag, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(header(headers, 'retry-after-ms') ?? '');
  let delay: number | undefined = Number.isFinite(ms) && ms >= 0 ? ms : undefined;
  const ra = header(headers, 'retry-after')?.trim();
  if (delay === undefined && ra) {
    const secs = Number(ra);
    if (Number.isFinite(secs) && secs >= 0) delay = secs * 1000;
    else {
      const at = Date.parse(ra);
      if (Number.isFinite(at)) delay = Math.max(0, at - now);
    }
  }
  return delay === undefined ? undefined : Math.min(Math.ceil(delay), MAX_RETRY_DELAY_MS);
}

function isContextLength(err: APIError): boolean {
  const body = err.error as { code?: unknown; message?: unknown } | undefined;
  const text = `${String(err.code ?? body?.code ?? '')} ${err.message}`;
  return (
    err.status === 413 ||
    /context_length_exceeded|context length|maximum context|context window|too many tokens/i.test(text)
  );
}

/**
 * A 5xx whose body is a request-validation error: the server's framework refused the request's
 * shape but reported it as an internal error (llama-cpp-python answers a `json_schema`
 * response_format with HTTP 500 and a pydantic "validation error ... literal_error ... Input should
 * be 'text' or 'json_object'"). Retrying the same request cannot help.
 */
const VALIDATION_BODY =
  /validation errors?\b|literal_error|Input should be|Field required|Extra inputs are not permitted|must be one of|unrecognized request argument|unsupported (parameter|value|response_format)|invalid_request_error/i;

function bodyText(err: APIError): string {
  const body = err.error as { message?: unknown; type?: unknown; code?: unknown } | undefined;
  return [body?.message, body?.type, body?.code, err.message].filter((x) => typeof x === 'string').join(' ');
}

/**
 * The server refused the request as malformed (400, 404, 422, or a 5xx whose body is a validation
 * error), not for auth, size or load: the same request will be refused again, though another
 * structured-output dialect may not be (src/llm/dialect.ts).
 */
export function isMalformedRequest(err: unknown): boolean {
  if (!(err instanceof APIError) || typeof err.status !== 'number') return false;
  if (err.status === 400 || err.status === 404 || err.status === 422) return !isContextLength(err);
  return err.status >= 500 && VALIDATION_BODY.test(bodyText(err));
}

/** Failures made from malformed-request refusals (in this process): auto mode may change dialect. */
const malformedFailures = new WeakSet<Error>();
export function wasMalformedRequest(failure: unknown): boolean {
  return failure instanceof Error && malformedFailures.has(failure);
}

/**
 * The same failure with the usage of the HTTP calls made before it in its details
 * (`[{usage}]`), so whoever catches it can still account for them (src/activities/attemptUsage.ts).
 */
export function withUsageDetails(failure: Error, usage: UsageCell): Error {
  if (!(failure instanceof ApplicationFailure) || usage.calls === 0) return failure;
  const copy = ApplicationFailure.create({
    type: failure.type ?? undefined,
    message: failure.message,
    nonRetryable: failure.nonRetryable ?? false,
    nextRetryDelay: failure.nextRetryDelay ?? undefined,
    cause: failure.cause,
    details: [{ usage: { ...usage } }],
  });
  if (malformedFailures.has(failure)) malformedFailures.add(copy);
  return copy;
}

function serverSays(err: APIError, ctx: LlmErrorContext): string {
  const body = err.error as { message?: unknown } | undefined;
  const text = typeof body?.message === 'string' ? body.message : err.message;
  return redact(text, ctx.secrets).slice(0, 300);
}

/**
 * A sign that the server has more requests than it can work on: the request timed out, or the
 * server answered 503. The limiter cuts the role's concurrency on it (as on a 429), so a local
 * server that answers one request at a time is not handed a queue that times out.
 */
export function isOverload(err: unknown, timedOut: boolean): boolean {
  return isTimeout(err, timedOut) || (err instanceof APIError && err.status === 503);
}

/** The request was sent and no answer came within the role's timeout. */
export function isTimeout(err: unknown, timedOut: boolean): boolean {
  return (
    err instanceof APIConnectionError &&
    (timedOut || err.name === 'APIConnectionTimeoutError' || /timed? ?out/i.test(err.message))
  );
}

/** True when the error is (or was caused by) our own abort: the caller must rethrow, not classify. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return (
    err instanceof APIUserAbortError ||
    (signal?.aborted ?? false) ||
    (err instanceof Error && err.name === 'AbortError')
  );
}

/**
 * The error to throw for `err`. A cancellation comes back as the signal's reason (the activity's
 * CancelledFailure) or the abort itself, so Temporal records a cancellation, not a failure.
 */
export function classifyLlmError(err: unknown, ctx: LlmErrorContext, signal?: AbortSignal): Error {
  if (isAbort(err, signal)) {
    const reason: unknown = signal?.reason;
    return reason instanceof Error ? reason : (err as Error);
  }
  if (err instanceof ApplicationFailure) return err;
  const where = describeCall(ctx);
  if (err instanceof APIConnectionError) {
    const what =
      ctx.timedOut || err.name === 'APIConnectionTimeoutError' || /timed? ?out/i.test(err.message)
        ? 'timed out'
        : 'failed to connect';
    return ApplicationFailure.create({
      type: LlmFailure.Connection,
      message: `LLM request ${what}: ${where}: ${redact(err.message, ctx.secrets)}`,
      nonRetryable: false,
    });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const said = serverSays(err, ctx);
    if (status === 429) {
      const delay = retryAfterMs(err.headers) ?? DEFAULT_RATE_LIMIT_DELAY_MS;
      return ApplicationFailure.create({
        type: LlmFailure.RateLimited,
        message: `LLM rate limited (HTTP 429, retry in ${delay} ms): ${where}: ${said}`,
        nonRetryable: false,
        nextRetryDelay: delay,
      });
    }
    if (status >= 500 && isMalformedRequest(err)) {
      const failure = ApplicationFailure.create({
        type: LlmFailure.Rejected,
        message: `LLM request rejected as malformed (HTTP ${status}, a request-validation error): ${where}: ${said}`,
        nonRetryable: true,
      });
      malformedFailures.add(failure);
      return failure;
    }
    if (status >= 500 || status === 408 || status === 409) {
      return ApplicationFailure.create({
        type: LlmFailure.Unavailable,
        message: `LLM endpoint unavailable (HTTP ${status}): ${where}: ${said}`,
        nonRetryable: false,
      });
    }
    if (isContextLength(err)) {
      return ApplicationFailure.create({
        type: LlmFailure.ContextLength,
        message: `LLM request too long for the model's context (HTTP ${status}): ${where}: ${said}`,
        nonRetryable: true,
      });
    }
    const hint =
      status === 401 || status === 403
        ? ' (check the API key environment variable for this role)'
        : status === 404
          ? ' (check baseURL and model name)'
          : '';
    const failure = ApplicationFailure.create({
      type: LlmFailure.Rejected,
      message: `LLM request rejected (HTTP ${status})${hint}: ${where}: ${said}`,
      nonRetryable: true,
    });
    if (isMalformedRequest(err)) malformedFailures.add(failure);
    return failure;
  }
  // Anything else (a bug, an unexpected SDK error): retryable, but say what it was.
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({
    type: LlmFailure.Unavailable,
    message: `LLM call failed: ${where}: ${redact(message, ctx.secrets).slice(0, 300)}`,
    nonRetryable: false,
  });
}

/** The current activity attempt, or undefined outside an activity (the client also runs in plain code). */
function activityAttempt(): number | undefined {
  try {
    return Context.current().info.attempt;
  } catch {
    return undefined;
  }
}

export interface InvalidOutputInfo {
  role: string;
  model: string;
  task: string;
  /** The last validation error (parse error, schema error or truncation). */
  error: string;
  /** HTTP calls made before giving up, so an activity can still account for them. */
  usage?: UsageCell;
  /** Temporal attempts that may retry this (default 2); later attempts fail for good. */
  maxInvalidAttempts?: number;
  secrets?: string[];
}

/**
 * Invalid output after all repairs. Retryable at the Temporal level only while the activity attempt
 * is below maxInvalidAttempts (a fresh attempt may sample differently), so a poison item fails in
 * bounded time; outside an activity it is final.
 */
export function invalidOutputFailure(info: InvalidOutputInfo): ApplicationFailure {
  const attempt = activityAttempt();
  const max = info.maxInvalidAttempts ?? 2;
  const nonRetryable = attempt === undefined || attempt >= max;
  return ApplicationFailure.create({
    type: LlmFailure.InvalidOutput,
    message: `invalid LLM output from ${info.role} model "${info.model}" for task ${info.task}: ${redact(info.error, info.secrets).slice(0, 300)}`,
    nonRetryable,
    details: info.usage ? [{ usage: info.usage }] : [],
  });
}
