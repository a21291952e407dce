import { ApplicationFailure } from '@temporalio/common';
import { createLlmClient } from '../src/llm/client';
import { LimiterRegistry } from '../src/llm/limiter';
import { LlmFailure } from '../src/llm/types';
import type { ResolvedRole } from '../src/schemas/config';
import { startSimulator, type Simulator } from '../src/sim';
import { encodeTask } from '../src/tasks';
import { simRole } from './helpers/config';

/** The limiter hooked into the real LLM client, against the simulator over HTTP. */
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 3 });
});
afterAll(async () => {
  await sim.close();
});

const role = (over: Partial<ResolvedRole> = {}): ResolvedRole => simRole(sim.url, over);
const slots = { instruction: 'Write a haiku about rivers.', max_skills: '3' };

test('each HTTP call takes a permit; usage corrects the token estimate; a 429 pauses the bucket and cuts concurrency', async () => {
  const limits = new LimiterRegistry();
  const cfg = role({ rpm: 6000, tpm: 1_000_000, maxConcurrency: 8 });
  const limiter = limits.for('strong', cfg);
  const client = createLlmClient('strong', cfg, {}, { limiter });
  const ok = await client.structured(encodeTask, slots);
  expect(limiter.rate.stats.admitted).toBe(1);
  expect(limiter.concurrency.inFlight).toBe(0);
  // What stays reserved is the real usage, not the (max_tokens-sized) estimate.
  const tokenMeter = (limiter.rate as unknown as { tokenMeter: { used(now: number): number } }).tokenMeter;
  expect(tokenMeter.used(Date.now())).toBe(ok.usage.promptTokens + ok.usage.completionTokens);

  await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/script`, {
    method: 'POST',
    body: JSON.stringify([{ status: 429, retryAfterMs: 1500 }]),
  });
  const err = await client.structured(encodeTask, slots).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe(LlmFailure.RateLimited);
  expect(limiter.rate.stats.rateLimited).toBe(1);
  expect(limiter.concurrency.limit).toBe(4);
  expect(limiter.concurrency.inFlight).toBe(0);
  const wait = limiter.rate.delay(1);
  expect(wait).toBeGreaterThan(1000);
  expect(wait).toBeLessThanOrEqual(1500);
});
