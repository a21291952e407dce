import type { RunProgress } from '../src/schemas/run';
import { until } from './helpers/control';
import { pauseAudit, useTimeSkipping } from './helpers/timeSkipping';

/**
 * Pause, resume and the budget, as the run's workflows decide them: on the time-skipping test
 * server with fake activities, so "paused for a day" takes milliseconds and "no LLM call while
 * paused" is read from the workflows' own histories instead of waited for.
 */
const ts = useTimeSkipping();

const progressOf = (runId: string) => ts.env.client.workflow.getHandle(runId).query<RunProgress>('progress');

test('a run paused by the user starts no LLM call for a day, and finishes its size once resumed', async () => {
  const runId = 'ts-pause';
  let pausedAtCalls = -1;
  let pausedEntry = '';
  const w = await ts.startWorker({
    // Pause while the second pair is being saved: nothing else is in flight then (one entry, one
    // instruction at a time), and the save returns only once the entry has been told.
    async onSaveRecord(n, entryId) {
      if (n !== 2) return;
      await ts.env.client.workflow.getHandle(runId).signal('pause', 'maintenance window');
      await until('the entry to be told of the pause', async () => {
        const history = await ts.env.client.workflow.getHandle(entryId).fetchHistory();
        return history.events?.some(
          (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'control',
        );
      });
      pausedAtCalls = w.fake.llmCalls();
      pausedEntry = entryId;
    },
  });
  const handle = await ts.startRun(w, runId, { limits: { size: 6, concurrency: 1 } });

  const paused = await until('the run to say it is paused', async () => {
    const p = await progressOf(runId);
    return p.state === 'paused' ? p : undefined;
  });
  expect(paused.pausedReason).toBe('maintenance window');
  expect(paused.counters.kept).toBeLessThan(6);

  await ts.env.sleep('1 day');
  const dayLater = await handle.query<RunProgress>('progress');
  expect(dayLater.state).toBe('paused');
  expect(w.fake.llmCalls()).toBe(pausedAtCalls);

  await handle.signal('resume');
  const result = await handle.result();
  expect(result.counters.kept).toBe(6);
  expect(w.fake.records).toHaveLength(6);
  expect((await handle.query<RunProgress>('progress')).state).toBe('completed');
  const audit = await pauseAudit(ts.env.client, w.fake.workflowIds);
  expect(audit.paused.sort()).toEqual([runId, pausedEntry].sort());
  expect(audit.llmCallsWhilePaused).toEqual([]);
});

test('a run over its call budget pauses with the reason, stays paused until the budget is raised, then finishes', async () => {
  const runId = 'ts-budget';
  const w = await ts.startWorker();
  const handle = await ts.startRun(w, runId, { limits: { size: 8, concurrency: 2, budgetCalls: 15 } });

  const paused = await until('the budget to pause the run', async () => {
    const p = await progressOf(runId);
    return p.state === 'paused' ? p : undefined;
  });
  expect(paused.pausedReason).toMatch(/^call budget reached: \d+ of 15 calls used; raise it with/);
  expect(paused.counters.kept).toBeLessThan(8);

  // Resumed without a higher budget: still over it, so still paused, with the budget's reason.
  await handle.signal('resume');
  await ts.env.sleep('1 hour');
  const still = await handle.query<RunProgress>('progress');
  expect(still.state).toBe('paused');
  expect(still.pausedReason).toMatch(/^call budget reached/);

  await handle.signal('resume', { budgetCalls: 1000 });
  const result = await handle.result();
  expect(result.counters.kept).toBe(8);
  const audit = await pauseAudit(ts.env.client, w.fake.workflowIds);
  expect(audit.paused.length).toBeGreaterThan(0);
  expect(audit.llmCallsWhilePaused).toEqual([]);
});
