import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { APIError } from 'openai';
import { DEFAULT_BATCH_SETTINGS, type ResolvedRole } from '../schemas/config';
import {
  batchSdk,
  fileText,
  outcomesOf,
  parseLines,
  submitOnce,
  TERMINAL,
  type LineOutcome,
} from './provider';
import type { BatchRequest } from './protocol';

/**
 * The batcher workflow's activities (src/workflows/batcher.ts). Each is safe to retry: creating is
 * idempotent by key (src/batch/provider.ts), the rest only reads or cancels.
 */

export interface SubmitInput {
  cfg: ResolvedRole;
  key: string;
  lines: string[];
}

export interface PollInput {
  cfg: ResolvedRole;
  batchId: string;
  inputFileId: string;
  ids: string[];
}

export interface PollResult {
  status: string;
  counts: { total: number; completed: number; failed: number };
  /** When the batch has ended: one outcome per request, and the lines of those worth a new batch. */
  ended?: {
    outputFileId?: string;
    outcomes: LineOutcome[];
    resubmit: BatchRequest[];
  };
}

/** A provider answer that retrying cannot change (bad key, no Batch API at this endpoint). */
function classify(err: unknown, what: string): unknown {
  if (err instanceof APIError && typeof err.status === 'number') {
    const retry = err.status === 429 || err.status >= 500 || err.status === 408;
    const msg = `${what}: HTTP ${err.status}: ${err.message}`;
    return retry
      ? ApplicationFailure.retryable(msg, 'BatchApiUnavailable')
      : ApplicationFailure.nonRetryable(msg, 'BatchApiRejected');
  }
  return err;
}

async function runState(runWorkflowId: string): Promise<{ open: boolean; paused: boolean }> {
  const handle = Context.current().client.workflow.getHandle(runWorkflowId);
  const d = await handle.describe();
  if (d.status.name !== 'RUNNING') return { open: false, paused: false };
  try {
    const p = await handle.query<{ state?: string }>('progress');
    return { open: true, paused: p?.state === 'paused' };
  } catch {
    return { open: true, paused: false }; // an eval has no progress query: never paused
  }
}

export function createBatchActivities(env: NodeJS.ProcessEnv = process.env) {
  return {
    async batchSubmit(input: SubmitInput) {
      try {
        return await submitOnce(
          batchSdk(input.cfg, env),
          input.key,
          input.lines,
          (input.cfg.batch ?? DEFAULT_BATCH_SETTINGS).completionWindow,
        );
      } catch (err) {
        throw classify(err, `creating batch ${input.key} at ${input.cfg.baseURL}`);
      }
    },

    async batchPoll(input: PollInput): Promise<PollResult> {
      const sdk = batchSdk(input.cfg, env);
      try {
        const b = await sdk.batches.retrieve(input.batchId);
        const counts = {
          total: b.request_counts?.total ?? input.ids.length,
          completed: b.request_counts?.completed ?? 0,
          failed: b.request_counts?.failed ?? 0,
        };
        if (!TERMINAL.has(b.status)) return { status: b.status, counts };
        const lines = [
          ...(b.output_file_id ? parseLines(await fileText(sdk, b.output_file_id)) : []),
          ...(b.error_file_id ? parseLines(await fileText(sdk, b.error_file_id)) : []),
        ];
        const outcomes = outcomesOf(b, input.ids, lines);
        const again = new Set(outcomes.filter((o) => o.kind === 'retry').map((o) => o.id));
        const resubmit: BatchRequest[] = [];
        if (again.size) {
          for (const l of (await fileText(sdk, input.inputFileId)).split('\n')) {
            if (!l.trim()) continue;
            const id = (JSON.parse(l) as { custom_id?: string }).custom_id;
            if (id && again.has(id)) resubmit.push({ id, line: l });
          }
        }
        return {
          status: b.status,
          counts,
          ended: { outputFileId: b.output_file_id ?? undefined, outcomes, resubmit },
        };
      } catch (err) {
        throw classify(err, `polling batch ${input.batchId} at ${input.cfg.baseURL}`);
      }
    },

    async batchCancel(input: { cfg: ResolvedRole; batchId: string }): Promise<string> {
      try {
        return (await batchSdk(input.cfg, env).batches.cancel(input.batchId)).status;
      } catch (err) {
        throw classify(err, `cancelling batch ${input.batchId} at ${input.cfg.baseURL}`);
      }
    },

    /** Whether the run is still running, and paused (pause holds new batches). */
    async batchRunState(input: { runWorkflowId: string }) {
      return runState(input.runWorkflowId);
    },
  };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
