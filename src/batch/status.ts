import type { WorkflowClient } from '@temporalio/client';
import { roleNames } from '../schemas/config';
import { batcherWorkflowId, OPEN_BATCHES_QUERY, type BatcherView } from './protocol';

/**
 * The batches of a run, for `codeclm status`: one query per role's batcher (src/workflows/batcher.ts);
 * roles without a batcher (online mode) are left out.
 */
export async function runBatches(client: WorkflowClient, runWorkflowId: string): Promise<BatcherView[]> {
  const views = await Promise.all(
    roleNames.map(async (role) => {
      const handle = client.getHandle(batcherWorkflowId(runWorkflowId, role));
      try {
        const d = await handle.describe();
        if (d.status.name !== 'RUNNING') return undefined;
        return await handle.query<BatcherView>(OPEN_BATCHES_QUERY);
      } catch {
        return undefined;
      }
    }),
  );
  return views.filter((v): v is BatcherView => !!v);
}

export function batchLines(views: BatcherView[]): string[] {
  const lines: string[] = [];
  for (const v of views) {
    lines.push(
      `batch ${v.role}: ${v.open.length} open, ${v.pending} request(s) gathering${v.paused ? ' (held: run paused)' : ''}, ${v.created} created`,
    );
    if (v.held)
      lines.push(
        v.held.untilABatchEnds
          ? `  next batch held until an open batch ends (the provider's enqueued-token limit)`
          : `  next batch held ${v.held.seconds} s more: ${v.held.failures} batch(es) in a row failed whole`,
      );
    for (const b of v.open)
      lines.push(
        `  ${b.batchId} ${b.status}: ${b.completed} completed, ${b.failed} failed of ${b.total}, age ${b.ageSeconds} s, next poll in ${b.nextPollSeconds} s`,
      );
  }
  return lines;
}
