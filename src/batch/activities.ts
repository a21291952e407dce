import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import OpenAI, { APIError } from 'openai';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { DEFAULT_BATCH_SETTINGS, type ResolvedRole } from '../schemas/config';
import {
  batchErrorReason,
  batchSdk,
  fileLines,
  OutcomeCollector,
  resultLines,
  submitOnce,
  TERMINAL,
  type LineOutcome,
} from './provider';
import type { BatchRequest, PartSelection } from './protocol';
import {
  assembleBatchFile,
  manifestGoneCodes,
  OutcomeWriter,
  readManifestRows,
  settleRows,
  spoolStore,
  type AssembledFile,
} from './spool';

/**
 * The batcher workflow's activities (src/workflows/batcher.ts). Each is safe to retry: creating is
 * idempotent by key (src/batch/provider.ts), the rest only reads or cancels.
 */

/**
 * A batch to create under `key`: with `spool`, its file is assembled from the spool (`lines` then
 * the selected `parts`, src/batch/spool.ts); without (legacy), `lines` is the whole file.
 */
export interface SubmitInput {
  cfg: ResolvedRole;
  key: string;
  lines?: string[];
  spool?: string;
  parts?: PartSelection[];
}

/**
 * With `spool` and `key`, the batch's requests are those of its manifest in the spool, and
 * `attempts` holds each one's earlier batches (one base-36 digit per manifest row); without
 * (legacy), `ids` lists them.
 */
export interface PollInput {
  cfg: ResolvedRole;
  batchId: string;
  inputFileId: string;
  ids?: string[];
  spool?: string;
  key?: string;
  attempts?: string;
  /**
   * The batcher cancelled this batch past its completion window and margin: its cancelled requests
   * go into a new batch (within maxResubmits) instead of failing as a cancel at the provider would.
   */
  givenUp?: boolean;
  /**
   * The batcher bounds whole-batch failures itself (patch batcher-batch-backoff): a batch that
   * failed as a whole (status failed) puts its requests into a new batch without counting it
   * against their resubmissions. Absent (older batchers): counted, as before.
   */
  wholeFailureUncounted?: boolean;
}

export interface PollResult {
  status: string;
  counts: { total: number; completed: number; failed: number };
  /**
   * When the batch has ended. Spooled: `codes` (one CODE per manifest row; every outcome but a
   * resubmission is in the spool) and the resubmitted lines as a new part (their sizes in order).
   * Legacy: one outcome per request, and the lines of those worth a new batch.
   */
  ended?: {
    outputFileId?: string;
    outcomes?: LineOutcome[];
    resubmit?: BatchRequest[];
    codes?: string;
    retry?: { part: string; bytes: number[] };
    /** A batch that failed as a whole: its error codes (errors.data[].code) and the provider's reason. */
    failure?: { codes: string[]; reason: string };
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

/**
 * Whether the run is open, and paused; `paused` undefined when its `progress` query did not answer:
 * an eval has none (never paused), and a run's can fail for a while (its workflow task slow, its
 * worker moving), in which case the batcher keeps what it knew: a paused run stays paused.
 */
async function runState(runWorkflowId: string): Promise<{ open: boolean; paused?: boolean }> {
  const handle = Context.current().client.workflow.getHandle(runWorkflowId);
  const d = await handle.describe();
  if (d.status.name !== 'RUNNING') return { open: false, paused: false };
  try {
    const p = await handle.query<{ state?: string }>('progress');
    return { open: true, paused: p?.state === 'paused' };
  } catch {
    return { open: true };
  }
}

export function createBatchActivities(env: NodeJS.ProcessEnv = process.env) {
  return {
    async batchSubmit(input: SubmitInput) {
      const file = input.spool
        ? await assembleBatchFile(
            spoolStore(input.spool, env),
            input.key,
            input.lines ?? [],
            input.parts ?? [],
          )
        : await inlineFile(input.lines ?? []);
      try {
        return await submitOnce(
          batchSdk(input.cfg, env),
          input.key,
          file,
          (input.cfg.batch ?? DEFAULT_BATCH_SETTINGS).completionWindow,
        );
      } catch (err) {
        throw classify(err, `creating batch ${input.key} at ${input.cfg.baseURL}`);
      } finally {
        await file.remove();
      }
    },

    async batchPoll(input: PollInput): Promise<PollResult> {
      const sdk = batchSdk(input.cfg, env);
      try {
        const b = await sdk.batches.retrieve(input.batchId);
        const counts = {
          // A provider that leaves out request_counts: the requests we sent (one attempt digit each).
          total: b.request_counts?.total ?? input.ids?.length ?? input.attempts?.length ?? 0,
          completed: b.request_counts?.completed ?? 0,
          failed: b.request_counts?.failed ?? 0,
        };
        if (!TERMINAL.has(b.status)) return { status: b.status, counts };
        if (input.spool && input.key)
          return { status: b.status, counts, ended: await settleSpooled(sdk, input, b, env) };
        const ids = input.ids ?? [];
        const collector = new OutcomeCollector(new Set(ids));
        for (const fileId of [b.output_file_id, b.error_file_id])
          if (fileId) for await (const line of resultLines(sdk, fileId, cancelled())) collector.add(line);
        const outcomes = collector.finish(b, ids);
        const again = new Set(outcomes.filter((o) => o.kind === 'retry').map((o) => o.id));
        const resubmit: BatchRequest[] = [];
        if (again.size) {
          for await (const l of fileLines(sdk, input.inputFileId, cancelled())) {
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

/** Legacy: a batch file from inline lines, in a temp file. */
async function inlineFile(lines: string[]): Promise<AssembledFile> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'codeclm-batch-'));
  const file = path.join(dir, 'batch.jsonl');
  const content = lines.join('\n') + '\n';
  await fs.promises.writeFile(file, content);
  return {
    path: file,
    bytes: Buffer.byteLength(content),
    ids: [],
    remove: () => fs.promises.rm(dir, { recursive: true, force: true }),
  };
}

/** The running activity's cancellation (a streamed download stops with it), if any. */
function cancelled(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/**
 * A spooled batch has ended: every request's outcome goes to the spool (done: its answer, written
 * as its output file line streams by, at most SPOOL_CONCURRENCY writes at once; failed: the
 * provider's reason; failed or expired once too often: that reason and the count), and the lines
 * worth another batch into a new part, so nothing per request but a code returns. Neither file is
 * ever held whole: memory grows with the batch's request count (ids, codes), not its answers. The
 * worker's interceptor heartbeats every 2 s throughout (src/activities/attemptUsage.ts). A retried
 * poll writes the same objects again.
 */
async function settleSpooled(
  sdk: OpenAI,
  input: PollInput,
  b: Pick<OpenAI.Batches.Batch, 'id' | 'status' | 'output_file_id' | 'error_file_id' | 'errors'>,
  env: NodeJS.ProcessEnv,
): Promise<NonNullable<PollResult['ended']>> {
  const store = spoolStore(input.spool!, env);
  // Undefined when the manifest was deleted under a live run: the answers still go to the spool by
  // id, and the rest of the batch fails with BatchSpoolMissing (manifestGoneCodes).
  const rows = await readManifestRows(store, input.key!);
  const collector = new OutcomeCollector(rows && new Set(rows.map((r) => r.id)), input.givenUp);
  const answers = new OutcomeWriter(store);
  for (const fileId of [b.output_file_id, b.error_file_id]) {
    if (!fileId) continue;
    for await (const line of resultLines(sdk, fileId, cancelled())) {
      const o = collector.add(line);
      if (o?.kind === 'ok')
        await answers.write(o.id, {
          state: 'done',
          file: fileId,
          batchId: b.id,
          answer: line.response!.body as ChatCompletion,
        });
    }
  }
  await answers.drain();
  const outputFileId = b.output_file_id ?? undefined;
  if (!rows) return { outputFileId, codes: manifestGoneCodes(input.attempts) };
  const outcomes = collector.finish(
    b,
    rows.map((r) => r.id),
  );
  const maxResubmits = (input.cfg.batch ?? DEFAULT_BATCH_SETTINGS).maxResubmits;
  const whole = b.status === 'failed';
  const uncounted = whole && input.wholeFailureUncounted === true;
  const settled = await settleRows(store, rows, outcomes, input.attempts, maxResubmits, uncounted);
  if (!whole) return { outputFileId, ...settled };
  const codes = (b.errors?.data ?? []).flatMap((e) => (e.code ? [e.code] : []));
  return { outputFileId, ...settled, failure: { codes, reason: batchErrorReason(b) } };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
