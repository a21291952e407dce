import { APIConnectionTimeoutError, APIError } from 'openai';
import { AdaptiveConcurrency } from '../src/llm/adaptive';
import { RateLimiter, RoleLimiter } from '../src/llm/limiter';
import { isOverload } from '../src/llm/errors';

/**
 * A local server that works one request at a time (llama-cpp-python's) queues the rest until they
 * time out. Timeouts and 503s must shrink the role's concurrency like 429s do, or every retry
 * refills the same queue.
 */
describe('overload: timeouts and 503s cut concurrency', () => {
  it('classifies timeouts and 503 as overload, other failures not', () => {
    expect(isOverload(new APIConnectionTimeoutError(), false)).toBe(true);
    expect(isOverload(new APIError(503, { message: 'busy' }, undefined, new Headers()), false)).toBe(true);
    expect(isOverload(new APIError(500, { message: 'bug' }, undefined, new Headers()), false)).toBe(false);
    expect(isOverload(new APIError(400, { message: 'bad' }, undefined, new Headers()), false)).toBe(false);
    expect(isOverload(new Error('socket hang up'), false)).toBe(false);
  });

  it('an overloaded permit halves the concurrency limit; a plain failure leaves it', async () => {
    const concurrency = new AdaptiveConcurrency({ max: 16 });
    const limiter = new RoleLimiter(concurrency, new RateLimiter({}));
    const failed = await limiter.acquire(10);
    failed.failed();
    expect(concurrency.limit).toBe(16);
    const timedOut = await limiter.acquire(10);
    timedOut.overloaded();
    expect(concurrency.limit).toBe(8);
    // Only requests started after the cut can cut again (one cut per window of requests).
    for (const p of await Promise.all(Array.from({ length: 4 }, () => limiter.acquire(10)))) p.overloaded();
    expect(concurrency.limit).toBe(4);
  });
});
