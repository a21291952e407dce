/** Network failures that can heal; ENOTFOUND (a host name that does not exist) is a wrong endpoint. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ServiceUnavailable',
  'InternalError',
]);

/**
 * Whether an object-store error (a read or a write, after the AWS SDK's own retries) may heal by
 * retrying: the store unreachable, a 5xx, throttling. Anything else (no such object or bucket, access
 * denied, no credentials, a malformed URL) is the user's to fix and will not.
 */
export function isTransientStoreError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 408 || status === 429)) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  return !!e.code && (TRANSIENT_CODES.has(e.code) || e.code.startsWith('UND_ERR_'));
}
