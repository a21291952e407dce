/**
 * One pool entry in one round as a workflow: the CodecLM loop of src/workflows/loop.ts
 * (generateEntry) with Temporal activities as its steps. Its state (src/workflows/entryState.ts)
 * adds only what durability needs: pause (Control), progress reports to the run (Reporter),
 * stopping once the run has its pairs, the decode-ahead queue's window (src/workflows/window.ts),
 * continue-as-new when the history grows (carrying the next batch, never texts) and an orderly end
 * on cancellation.
 */
import { isCancellation } from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { ControlState, Tuning } from './control';
import { EntryState } from './entryState';
import { generateEntry } from './loop';

export interface EntryInput {
  runId: string;
  outDir: string;
  round: number;
  entry: number;
  /** Instructions to decode for this entry in this round. */
  count: number;
  /** Instructions in flight at once. */
  window: number;
  config: ResolvedConfig;
  taskQueue?: string;
  control?: ControlState;
  tuning?: Tuning;
  /** Set by continue-as-new: the first batch this run of the workflow decodes. */
  nextBatch?: number;
  /**
   * Pairs the run still needed when it started this entry (STOP_WHEN_DONE): once the entry has kept
   * that many itself it starts nothing new, without waiting for the run to say so.
   */
  needed?: number;
  /** The run has a benchmark index: screen decoded instructions against it. */
  decontaminate?: boolean;
}

/** Everything an entry finds is reported to the run by signal (see Reporter); the result is empty. */
export type EntryResult = Record<string, never>;

export async function generateForEntry(input: EntryInput): Promise<EntryResult> {
  const entry = new EntryState(input);
  try {
    await generateEntry(entry.steps());
    return await entry.finish();
  } catch (err) {
    if (isCancellation(err)) await entry.cancelled();
    throw err;
  }
}
