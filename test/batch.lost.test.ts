import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { BatchActivities, PollInput } from '../src/batch/activities';
import { BATCHER_WORKFLOW, OUTCOMES_QUERY, type BatcherInput, type OutcomeView } from '../src/batch/protocol';
import { prebuiltWorkflowBundle } from '../src/worker';
import { fastBatchSettings, simRole } from './helpers/config';
import { uniqueQueue } from './helpers/env';
import { startTimeSkipping } from './helpers/timeSkipping';

/**
 * A batch that never ends at the provider, on the time-skipping test server (days of workflow time
 * in seconds): the batcher's own batch activities are scripted, the workflow is the real one.
 */
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTimeSkipping();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

test('a batch stuck at the provider even after the batcher cancelled it fails its calls with the reason, in bounded time', async () => {
  let cancelled = false;
  const polls: PollInput[] = [];
  const activities: Partial<BatchActivities> = {
    batchRunState: async () => ({ open: true, paused: false }),
    batchCancel: async () => {
      cancelled = true;
      return 'cancelling';
    },
    batchPoll: async (input) => {
      polls.push(input);
      // It never ends: in progress, and once cancelled, cancelling for ever.
      return {
        status: cancelled ? 'cancelling' : 'in_progress',
        counts: { total: 1, completed: 0, failed: 0 },
      };
    },
  };
  const taskQueue = uniqueQueue('batch-lost');
  const bundle = await prebuiltWorkflowBundle();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    activities,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath: require.resolve('../src/workflows') }),
  });
  const cfg = simRole('http://fake-llm.invalid/v1', {
    mode: 'batch',
    batch: { ...fastBatchSettings, pollSeconds: 60, maxPollSeconds: 3600, runCheckSeconds: 3600 },
  });
  const now = Date.now();
  const input: BatcherInput = {
    runWorkflowId: 'lost-run',
    role: 'judge',
    cfg,
    carried: {
      seq: 1,
      pending: [],
      spool: '/nowhere/spool',
      open: [
        {
          key: 'lost#0',
          batchId: 'batch_lost',
          inputFileId: 'file_lost',
          ids: ['req-lost'],
          spool: '/nowhere/spool',
          createdAt: now,
          nextPollAt: now + 60_000,
          pollMs: 60_000,
          status: 'validating',
          counts: { total: 1, completed: 0, failed: 0 },
        },
      ],
      outcomes: {},
      created: 1,
    },
  };
  await worker.runUntil(async () => {
    const h = await env.client.workflow.start(BATCHER_WORKFLOW, {
      workflowId: 'lost-run/b-judge',
      taskQueue,
      args: [input],
    });
    // Past the 24 h window and the 2 h margin (cancelled then), and past another margin after it.
    await env.sleep('40 hours');
    const views = await h.query<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY, ['req-lost']);
    expect(cancelled).toBe(true);
    // Polls after its cancel say so, so its cancelled lines are resubmitted, not failed (batchPoll).
    const givenUp = polls.map((p) => p.givenUp === true);
    expect(givenUp[0]).toBe(false);
    expect(givenUp[givenUp.length - 1]).toBe(true);
    expect(views['req-lost']).toMatchObject({
      state: 'failed',
      reason: expect.stringContaining('batch batch_lost did not end at the provider'),
    });
    const pollsThen = polls.length;
    await env.sleep('10 hours');
    expect(polls.length).toBe(pollsThen); // no longer polled
    await h.terminate('test over');
  });
}, 120_000);
