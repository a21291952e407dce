import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { codeclmScheduledRun } from '../src/workflows';
import { fakeRunInput, transient, useTimeSkipping } from './helpers/timeSkipping';

/**
 * What the workflows do over time: retry back-offs and refreshes a day apart. On the time-skipping
 * test server the server's clock jumps over every wait, so minutes and days of workflow time pass
 * in a second of the test's.
 */
const ts = useTimeSkipping();

test('an LLM call failing transiently is retried with doubling back-off until it answers, and its pair is kept', async () => {
  // The target's answer to one instruction fails six times: 1+2+4+8+16+32 s of back-off.
  const flaky = (input: unknown) =>
    (input as { label?: string }).label?.startsWith('target answer r1-e00000-i0000');
  const w = await ts.startWorker({
    fault: (activity, attempt, input) =>
      activity === 'answer' && flaky(input) && attempt <= 6 ? transient() : undefined,
  });
  const runId = 'ts-retry-backoff';
  const handle = await ts.startRun(w, runId, { limits: { size: 4 } });
  const realStart = Date.now();
  const result = await handle.result();
  const realSeconds = (Date.now() - realStart) / 1000;

  expect(result.counters.kept).toBe(4);
  expect(result.counters.failed).toBe(0);
  expect(w.fake.calls.answer).toBe(2 * 4 + 6);
  // Workflow time went through the back-off; the test did not wait for it.
  expect(result.wallSeconds).toBeGreaterThanOrEqual(63);
  expect(realSeconds).toBeLessThan(result.wallSeconds);
});

test('with a retry limit, a call that never answers fails its item after the back-off and the run goes on', async () => {
  const w = await ts.startWorker({
    fault: (activity, _attempt, input) =>
      activity === 'judge' && (input as { label: string }).label.includes('r1-e00001-i0000')
        ? transient('the judge is down')
        : undefined,
  });
  const runId = 'ts-retry-limit';
  const handle = await ts.startRun(w, runId, { limits: { size: 4, topUpRounds: 0, llmMaxAttempts: 3 } });
  const result = await handle.result();
  expect(result.counters.kept).toBe(3);
  expect(result.counters.failed).toBe(1);
  // Both judge orders of that instruction, three attempts each, 1 + 2 s apart.
  expect(w.fake.calls.judge).toBe(2 * 3 + 2 * 3);
  expect(result.wallSeconds).toBeGreaterThanOrEqual(3);
  const progress = await handle.query<{ failures: { item: string; stage: string; reason: string }[] }>(
    'progress',
  );
  expect(progress.failures).toEqual([
    expect.objectContaining({
      item: 'r1-e00001-i0000',
      stage: 'judge',
      reason: expect.stringContaining('the judge is down'),
    }),
  ]);
});

test('a store outage of half an hour while a pair is saved: its save is retried until the store is back, nothing failed', async () => {
  // The first pair's save fails for 40 attempts (1+2+4+8+16+32 s, then a minute apart: ~35 min),
  // as a bucket that is down or throttling would; the pair was paid for, so it must not be failed.
  let victim: string | undefined;
  const w = await ts.startWorker({
    async onSaveRecord() {
      const saved = w.fake.records.at(-1)!;
      victim ??= saved.id;
      if (saved.id !== victim || Context.current().info.attempt > 40) return;
      w.fake.records.pop(); // Not saved after all.
      throw ApplicationFailure.retryable('simulated S3 503 SlowDown', 'S3ServiceException');
    },
  });
  const handle = await ts.startRun(w, 'ts-store-outage', { limits: { size: 4, topUpRounds: 0 } });
  const result = await handle.result();
  expect(result.counters.failed).toBe(0);
  expect(result.counters.kept).toBe(4);
  expect(new Set(w.fake.records.map((r) => r.id)).size).toBe(4);
  expect(result.wallSeconds).toBeGreaterThanOrEqual(30 * 60);
});

test('refreshes started a day apart publish versions named by their start, a day apart and in order', async () => {
  const w = await ts.startWorker({ pool: 2 });
  const refresh = async (workflowId: string) => {
    const base = fakeRunInput(workflowId, w.taskQueue, { limits: { size: 2 } });
    return ts.env.client.workflow.execute<typeof codeclmScheduledRun>('codeclmScheduledRun', {
      workflowId,
      taskQueue: w.taskQueue,
      args: [
        {
          scheduleId: 'nightly',
          outDir: '/fake/nightly',
          seedsFile: base.seedsFile,
          skipInvalid: false,
          config: base.config,
          taskQueue: w.taskQueue,
        },
      ],
    });
  };
  const first = await refresh('nightly-1');
  await ts.env.sleep('1 day');
  const second = await refresh('nightly-2');

  expect(w.fake.versions.published).toEqual([first.version, second.version]);
  expect(second.version > first.version).toBe(true);
  const startOf = (version: string) =>
    Date.parse(
      version.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2}\.\d{3}Z).*$/, '$1-$2-$3T$4:$5:$6'),
    );
  expect(startOf(second.version) - startOf(first.version)).toBeGreaterThanOrEqual(24 * 3600 * 1000);
  expect(first.counters.kept).toBe(2);
  expect(second.counters.kept).toBe(2);
  expect(second.changes.previous).toBe(first.version);
});
