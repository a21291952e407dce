import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../src/worker';

/**
 * Replays the histories of the given workflow ids (their latest runs, or the runs named) against the
 * current workflow code and expects every one to replay without nondeterminism.
 */
export async function expectReplays(
  client: Client,
  workflows: (string | { workflowId: string; runId?: string })[],
  replayName: string,
): Promise<void> {
  const histories = await Promise.all(
    workflows.map(async (w) => {
      const { workflowId, runId } = typeof w === 'string' ? { workflowId: w, runId: undefined } : w;
      return { workflowId, history: await client.workflow.getHandle(workflowId, runId).fetchHistory() };
    }),
  );
  let replayed = 0;
  for await (const r of Worker.runReplayHistories(
    { workflowsPath: workflowsPath(), replayName },
    histories,
  )) {
    expect(r.error).toBeUndefined();
    replayed++;
  }
  expect(replayed).toBe(workflows.length);
}
