import { MockActivityEnvironment } from '@temporalio/testing';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { BatchSend, createBatchSend } from '../../src/llm/batchClient';
import type { ResolvedRole } from '../../src/schemas/config';
import { startSimulator, type Simulator } from '../../src/sim/server';
import { startActivityTestWorker, type TestWorker } from './pipeline';

/**
 * One batch-mode judge call made as attempt `attempt` of activity `activityId` of an entry of
 * `runId` would make it: a mocked activity context (the worker's client, its judge queue) around the
 * real batch client, so a test can retry a call "late" with the very request id it had.
 * `createSend` is the batch client module's (a second copy of the module stands for another
 * worker process).
 */
export function callBatchAsActivity(
  w: Pick<TestWorker, 'client' | 'taskQueue'>,
  createSend: typeof createBatchSend,
  call: {
    runId: string;
    activityId: string;
    role: ResolvedRole;
    params: ChatCompletionCreateParamsNonStreaming;
    attempt?: number;
    /** Aborts the call as the worker does when the server cancels the attempt. */
    signal?: AbortSignal;
  },
): ReturnType<BatchSend> {
  const env = new MockActivityEnvironment(
    {
      workflowExecution: { workflowId: `${call.runId}/r1-e00000`, runId: 'entry-run-1' },
      activityId: call.activityId,
      attempt: call.attempt ?? 1,
      taskQueue: `${w.taskQueue}-llm-judge`,
      workflowNamespace: 'default',
      heartbeatDetails: undefined,
    },
    { client: w.client },
  );
  const send = createSend('judge', call.role, process.env);
  return env.run(() => send(call.params, call.signal)) as ReturnType<BatchSend>;
}

/** The simulator's batch lifecycle, fast enough for tests (ms in each state). */
export const FAST_SIM_BATCH = {
  completionDelayMs: 200,
  validatingMs: 50,
  finalizingMs: 50,
  cancellingMs: 50,
};

export interface BatchTestbed {
  w: TestWorker;
  sim: Simulator;
}

/**
 * A simulator with fast batches and an activity test worker running a stand-in run (holdOpen unless
 * `workflowsPath` names another),
 * started before a test file's tests and stopped after them (waiters tick every 200 ms).
 */
export function useBatchTestbed(
  name: string,
  seed: number,
  workflowsPath = require.resolve('../workflows/holdOpen'),
): BatchTestbed {
  const bed = {} as BatchTestbed;
  beforeAll(async () => {
    process.env.CODECLM_BATCH_TICK_MS = '200';
    bed.sim = await startSimulator({ port: 0, seed, batch: FAST_SIM_BATCH });
    bed.w = await startActivityTestWorker({
      name,
      workflowsPath,
      env: process.env,
    });
  });
  afterAll(async () => {
    await bed.w?.stop();
    await bed.sim?.close();
  });
  return bed;
}

/** A short question for a batch-mode call (16 tokens at most). */
export function shortQuestion(text: string): ChatCompletionCreateParamsNonStreaming {
  return { model: 'sim-strong', max_tokens: 16, messages: [{ role: 'user', content: text }] };
}
