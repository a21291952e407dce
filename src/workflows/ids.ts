/**
 * Workflow ids a run derives from its run id, built here only, so that the check made at `run`
 * (src/cli/ids.ts) measures exactly the ids the workflows will use.
 *
 * Temporal refuses ids longer than its `limit.maxIDLength`. A cluster on PostgreSQL must keep it at
 * 255 (the `workflow_id VARCHAR(255)` columns), temporal-docker/dynamicconfig/codeclm.yaml sets
 * that, and the dev server codeclm starts uses the same value (src/temporal/devServer.ts), so an id
 * that works in a test works on the cluster.
 */
export const MAX_ID_LENGTH = 255;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** The child that encodes seed chunk `chunk` (0-based). */
export function encodeWorkflowId(runId: string, chunk: number): string {
  return `${runId}/encode-${chunk}`;
}

/** The child that decodes, rubrics and filters one pool entry in one round (1-based). */
export function entryWorkflowId(runId: string, round: number, entry: number): string {
  return `${runId}/r${round}-e${pad(entry, 5)}`;
}

export interface RunIdBounds {
  /** Encode chunks of the run (seeds / the pipeline's chunk size, rounded up). */
  encodeChunks: number;
  /** Pool entries (method.poolSize). */
  poolSize: number;
  /** Rounds: the first plus limits.topUpRounds. */
  rounds: number;
}

/**
 * The longest workflow id a run with these bounds can create (the run itself, its last encode
 * chunk, its last entry of its last round). Instruction workflows, `<run>/r.-e.....-i....`, exist
 * only in histories from before the instructions were inlined (INLINE_INSTRUCTIONS); new runs never
 * start them.
 */
export function longestRunWorkflowId(runId: string, b: RunIdBounds): string {
  const candidates = [
    runId,
    encodeWorkflowId(runId, Math.max(0, b.encodeChunks - 1)),
    entryWorkflowId(runId, Math.max(1, b.rounds), Math.max(0, b.poolSize - 1)),
  ];
  return candidates.reduce((a, c) => (c.length > a.length ? c : a));
}

/** An evaluation's chunk of instructions (0-based). */
export function evalChunkWorkflowId(evalId: string, chunk: number): string {
  return `${evalId}/chunk-${pad(chunk, 5)}`;
}

/** One instruction of an evaluation (0-based index in the instruction file). */
export function evalItemWorkflowId(evalId: string, index: number): string {
  return `${evalId}/i${pad(index, 6)}`;
}

/** The longest workflow id of an evaluation of up to 99,999 chunks (the padded widths). */
export function longestEvalWorkflowId(evalId: string): string {
  const candidates = [evalId, evalChunkWorkflowId(evalId, 0), evalItemWorkflowId(evalId, 0)];
  return candidates.reduce((a, c) => (c.length > a.length ? c : a));
}
