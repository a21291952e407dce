import type { ChatCompletion } from 'openai/resources/chat/completions';
import type { ResolvedRole, RoleName } from '../schemas/config';

/**
 * What the batcher workflow (src/workflows/batcher.ts), its activities (./activities.ts) and the
 * batch-mode LLM client (src/llm/batchClient.ts) say to each other. Pure data and names: the
 * workflow imports it too.
 */

export const BATCHER_WORKFLOW = 'codeclmBatcher';
/** Legacy (src/workflows/legacy/batcher.ts): requests with their lines inline. */
export const SUBMIT_SIGNAL = 'batchSubmit';
/** Requests whose lines a process wrote to the spool (src/batch/spool.ts): references only. */
export const SPOOL_SIGNAL = 'batchSpooled';
export const OUTCOMES_QUERY = 'batchOutcomes';
export const OPEN_BATCHES_QUERY = 'openBatches';
/** ApplicationFailure type of a request that failed for good in its batches. */
export const BATCH_REQUEST_FAILED = 'LlmBatchRequestFailed';

/** One chat-completion request: `line` is the JSONL line of the batch input file. */
export interface BatchRequest {
  /** Deterministic (workflow, run, activity, call index): a retried activity asks for the same one. */
  id: string;
  line: string;
}

/**
 * A part of the spool (one group of lines written by one process) and the requests in it, in line
 * order: the line of `ids[i]` is line i of the part and `bytes[i]` long (with its newline).
 */
export interface SpooledRequests {
  /** The spool's location (a directory or s3://bucket/prefix; no credentials). */
  spool: string;
  part: string;
  ids: string[];
  bytes: number[];
}

/** A request gathering in the batcher: a reference into the spool, or (legacy) its line inline. */
export type PendingRequest = { id: string; attempts: number } & (
  { line: string } | { part: string; index: number; bytes: number }
);

/** Lines picked from one part of the spool for a batch file: half-open index ranges. */
export interface PartSelection {
  part: string;
  ranges: [number, number][];
}

/** How a spooled batch ended, per request (src/batch/activities.ts): done, failed for good, resubmitted. */
export const CODE = { done: 'o', failed: 'f', retry: 'r' } as const;

export interface BatcherInput {
  /** The run (or eval) workflow whose calls this batcher gathers; it ends when that one closes. */
  runWorkflowId: string;
  role: RoleName;
  /** Keyless role config: endpoint, model, key variable name, batch settings. */
  cfg: ResolvedRole;
  carried?: BatcherCarry;
  /** Tests: continue-as-new after this many history events (default 5,000). */
  tuning?: { maxHistoryEvents?: number };
}

/**
 * What becomes of a request: `stored` when its outcome is in the spool (src/batch/spool.ts, read
 * there by the waiting call); `done`/`failed` (legacy: batches of inline lines) held here only.
 */
export type Outcome =
  | { state: 'stored'; at: number }
  | { state: 'done'; file: string; at: number }
  | { state: 'failed'; reason: string; status?: number; body?: unknown; at: number };

/** A request's outcome as the spool keeps it, for as long as the spool is kept. */
export type StoredOutcome =
  | {
      state: 'done';
      file: string;
      batchId: string;
      /**
       * The request's chat completion (its output file line's body), so a waiting call reads only
       * this object. Absent in outcomes written before answers were spooled: then the call picks
       * its line out of `file`.
       */
      answer?: ChatCompletion;
    }
  | { state: 'failed'; reason: string; status?: number; body?: unknown };

export type OutcomeView = Outcome | { state: 'pending' } | { state: 'unknown' };

export interface OpenBatch {
  key: string;
  batchId: string;
  inputFileId: string;
  ids: string[];
  /** Set when the batch's file was assembled from this spool: its outcomes are written there. */
  spool?: string;
  createdAt: number;
  nextPollAt: number;
  pollMs: number;
  status: string;
  counts: { total: number; completed: number; failed: number };
  cancelling?: boolean;
  /**
   * Set in a continue-as-new's carry only: each request's batches before this one, one base-36
   * digit per id (as batchPoll gets them), so the resubmission bound holds across generations.
   */
  attempts?: string;
}

/** What a batcher carries through continue-as-new (src/workflows/batcherState.ts). */
export interface BatcherCarry {
  seq: number;
  pending: PendingRequest[];
  /** Where the requests' lines are (from the first spooled signal). */
  spool?: string;
  pendingSince?: number;
  open: OpenBatch[];
  outcomes: Record<string, Outcome>;
  /** Batches created so far by this batcher (all continue-as-new generations). */
  created: number;
  /** The next flush held after batches failed as a whole (src/workflows/batcherState.ts). */
  hold?: FlushHold;
}

/**
 * After a batch failed as a whole: `failures` in a row (reset when a batch is accepted), the next
 * flush held `until` (ms), or until one of the batches `waitFor` (keys) ends (the enqueued-token
 * limit, which frees up as open batches finish).
 */
export interface FlushHold {
  failures: number;
  until?: number;
  waitFor?: string[];
}

/** One open batch as `codeclm status` shows it. */
export interface OpenBatchView {
  role: RoleName;
  batchId: string;
  status: string;
  completed: number;
  failed: number;
  total: number;
  ageSeconds: number;
  nextPollSeconds: number;
}

export interface BatcherView {
  role: RoleName;
  pending: number;
  paused: boolean;
  created: number;
  open: OpenBatchView[];
  /**
   * The next batch held after batches failed as a whole: `failures` in a row so far, for
   * `seconds` more, or until an open batch ends (the enqueued-token limit).
   */
  held?: { failures: number; seconds?: number; untilABatchEnds?: boolean };
}

/**
 * The batcher of a run's role: `<run>/b-<role>`, no longer than the run's entry ids
 * (`<run>/rN-eNNNNN`), so the id-length check made at `run` (src/workflows/ids.ts) covers it.
 */
export function batcherWorkflowId(runWorkflowId: string, role: RoleName): string {
  return `${runWorkflowId}/b-${role}`;
}

/**
 * The run (or eval) a workflow belongs to: its id without the child suffixes of src/workflows/ids.ts
 * (`/encode-N`, `/rN-eNNNNN`, `/chunk-NNNNN`, `/iNNNNNN`, an instruction's own suffix).
 */
export function runWorkflowIdOf(workflowId: string): string {
  const m = /^(.*?)\/(encode-\d+|r\d+-e\d+|chunk-\d+|i\d+)(\/.*)?$/.exec(workflowId);
  return m ? m[1]! : workflowId;
}
