import { defaultPayloadConverter } from '@temporalio/common';
import { useTimeSkipping } from './helpers/timeSkipping';

/**
 * Top-up rounds and continue-as-new, as the run's workflows decide them, on the time-skipping test
 * server with fake activities: the judge's verdicts are scripted, so each run's rounds and counts
 * follow from docs/method.md and the allocation rules (src/workflows/allocation.ts) alone.
 */
const ts = useTimeSkipping();

/** Decoded instructions end in `#<index in their batch>`; the judge keeps the even ones. */
const keepEven = (instruction: string) =>
  Number(/#(\d+)$/.exec(instruction)?.[1]) % 2 === 0 ? { strong: 9, target: 3 } : { strong: 6, target: 6 };

test('a first round that keeps too few is topped up until the run has its size', async () => {
  const w = await ts.startWorker({ pool: 2, verdict: keepEven });
  const result = await (await ts.startRun(w, 'ts-top-up', { limits: { size: 6, topUpRounds: 2 } })).result();
  // Round 1: 3 instructions per entry, #0 and #2 kept: 4 of 6. Round 2 decodes what the keep rate
  // says the missing 2 need (3) and stops once the sixth pair is kept.
  expect(result.counters.rounds).toBe(2);
  expect(result.counters.kept).toBe(6);
  const c = result.counters;
  expect(c.kept + c.dropped + c.failed).toBe(c.instructions);
  expect(w.fake.records.map((r) => r.id).sort()).toEqual(
    [...new Set(w.fake.records.map((r) => r.id))].sort(),
  );
  expect(w.fake.records.every((r) => r.id.startsWith('r1-') || r.id.startsWith('r2-'))).toBe(true);
});

test('with no top-up rounds the run ends after the first round with the pairs it kept', async () => {
  const w = await ts.startWorker({ pool: 2, verdict: keepEven });
  const result = await (
    await ts.startRun(w, 'ts-no-top-up', { limits: { size: 6, topUpRounds: 0 } })
  ).result();
  expect(result.counters.rounds).toBe(1);
  expect(result.counters.kept).toBe(4);
  expect(result.counters.dropped).toBe(2);
  expect(result.counters.instructions).toBe(6);
});

test('a filter that keeps nothing gives up after 1 + topUpRounds rounds, each at most 4x what is missing', async () => {
  const w = await ts.startWorker({ pool: 2, verdict: () => ({ strong: 7, target: 7 }) });
  const result = await (
    await ts.startRun(w, 'ts-keeps-nothing', { limits: { size: 4, topUpRounds: 2 } })
  ).result();
  expect(result.counters.rounds).toBe(3);
  expect(result.counters.kept).toBe(0);
  // 4, then 16 and 16 (the missing 4 at the floor keep rate of 1 in 4).
  expect(result.counters.instructions).toBe(36);
  expect(result.counters.dropped).toBe(36);
});

test('a run and its entries continue-as-new as their histories grow, carrying counts but no texts', async () => {
  const w = await ts.startWorker({ pool: 2 });
  const runId = 'ts-continue-as-new';
  const handle = await ts.startRun(
    w,
    runId,
    { method: { decodeBatch: 2 }, limits: { size: 12, concurrency: 1 } },
    { tuning: { maxHistoryEvents: 40 } },
  );
  const result = await handle.result();
  expect(result.counters.kept).toBe(12);
  expect(new Set(w.fake.records.map((r) => r.id)).size).toBe(12);

  const started = async (workflowId: string) => {
    const history = await ts.env.client.workflow.getHandle(workflowId).fetchHistory();
    return history.events![0]!.workflowExecutionStartedEventAttributes!;
  };
  expect((await started(runId)).continuedExecutionRunId).toBeTruthy();
  const entries = w.fake.ranBy('writeRubrics');
  expect(entries).toHaveLength(2);
  let continued = 0;
  for (const id of entries) {
    const attrs = await started(id);
    if (!attrs.continuedExecutionRunId) continue;
    continued++;
    const input = JSON.stringify(defaultPayloadConverter.fromPayload(attrs.input!.payloads![0]!));
    expect(input).not.toMatch(/ #\d+/); // no decoded instruction travels through continue-as-new
  }
  expect(continued).toBeGreaterThan(0);
});
