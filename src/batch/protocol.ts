import type { ResolvedRole, RoleName } from '../schemas/config';

/**
 * What the batcher workflow (src/workflows/batcher.ts), its activities (./activities.ts) and the
 * batch-mode LLM client (src/llm/batchClient.ts) say to each other. Pure data and names: the
 * workflow imports it too.
 */

export const BATCHER_WORKFLOW = 'codeclmBatcher';
export const SUBMIT_SIGNAL = 'batchSubmit';
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

export interface BatcherInput {
  /** The run (or eval) workflow whose calls this batcher gathers; it ends when that one closes. */
  runWorkflowId: string;
  role: RoleName;
  /** Keyless role config: endpoint, model, key variable name, batch settings. */
  cfg: ResolvedRole;
  carried?: BatcherCarry;
}

/** What becomes of a request: its line in an output file, or a final failure. */
export type Outcome =
  | { state: 'done'; file: string; at: number }
  | { state: 'failed'; reason: string; status?: number; body?: unknown; at: number };

export type OutcomeView = Outcome | { state: 'pending' } | { state: 'unknown' };

export interface OpenBatch {
  key: string;
  batchId: string;
  inputFileId: string;
  ids: string[];
  createdAt: number;
  nextPollAt: number;
  pollMs: number;
  status: string;
  counts: { total: number; completed: number; failed: number };
  cancelling?: boolean;
}

/** What a batcher carries through continue-as-new (src/workflows/batcherState.ts). */
export interface BatcherCarry {
  seq: number;
  pending: (BatchRequest & { attempts: number })[];
  pendingSince?: number;
  open: OpenBatch[];
  outcomes: Record<string, Outcome>;
  /** Batches created so far by this batcher (all continue-as-new generations). */
  created: number;
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
