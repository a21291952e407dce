import { runChaos } from '../src/chaos/harness';

/**
 * The chaos harness at a small size (issue 4): its own dev server and simulator (faults on: 5 %
 * 429/500/503, 3 % malformed JSON), 2 `codeclm worker` processes SIGKILLed at random and
 * restarted, the server SIGKILLed once and restarted on the same state file. Nothing may be lost
 * or duplicated, and the workers stop gracefully (exit 0) on SIGTERM at the end.
 */
test('chaos: SIGKILLed workers, a killed server and provider faults lose and duplicate nothing', async () => {
  const summary = await runChaos({
    size: 100,
    workers: 2,
    seed: 7,
    seeds: 40,
    killEveryMs: 7000,
    serverKillAfter: 2,
    timeoutMs: 280_000,
    log: () => undefined,
  });
  expect(summary.state).toBe('completed');
  expect(summary.lost).toBe(0);
  expect(summary.duplicates).toBe(0);
  expect(summary.kept).toBeGreaterThan(0);
  expect(summary.worker_kills).toBeGreaterThanOrEqual(3);
  expect(summary.server_kills).toBe(1);
  expect(summary.graceful_stops).toBeGreaterThanOrEqual(1);
  expect(Object.keys(summary.sim_faults).some((f) => f.startsWith('random:'))).toBe(true);
}, 300_000);
