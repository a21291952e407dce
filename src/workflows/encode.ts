/**
 * Encode (docs/method.md section 1) as a workflow: one chunk of seeds, one activity per seed, each
 * returning a use case and at most 3 skills (stored by the activity, read back by buildPool). The run
 * starts one such child per ENCODE_CHUNK seeds, so each child's history stays small at any seed count.
 */
import { setHandler } from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import { addUsage, usageInFailure, type Usage } from '../schemas/records';
import { MAX_FAILURES_LISTED, type Failure } from '../schemas/run';
import { failureMessage } from '../util/failure';
import { llmActivities } from './activities';
import { Control, controlSignal, type ControlState } from './control';
import { isItemFailure } from './failures';
import { windowRange } from './window';

/** Seeds per encodeSeeds child: keeps each child's history small at any seed count. */
export const ENCODE_CHUNK = 250;

export interface EncodeChunkInput {
  outDir: string;
  start: number;
  end: number;
  config: ResolvedConfig;
  taskQueue?: string;
  control?: ControlState;
}

export interface EncodeChunkResult {
  encoded: number;
  failed: number;
  usage: Usage;
  failures: Failure[];
}

export async function encodeSeeds(input: EncodeChunkInput): Promise<EncodeChunkResult> {
  const llm = llmActivities(input.config.limits, input.taskQueue);
  const control = new Control(input.control);
  setHandler(controlSignal, (state) => control.receive(state));
  const result: EncodeChunkResult = { encoded: 0, failed: 0, usage: {}, failures: [] };
  await windowRange(
    input.start,
    input.end,
    { limit: input.config.limits.concurrency, gate: control.gate },
    async (index) => {
      try {
        const r = await llm.encodeSeed({
          outDir: input.outDir,
          index,
          strong: input.config.roles.strong,
          method: input.config.method,
        });
        addUsage(result.usage, r.usage);
        result.encoded++;
      } catch (err) {
        if (!isItemFailure(err)) throw err;
        addUsage(result.usage, usageInFailure(err)); // the calls the failed attempts made
        result.failed++;
        result.failures.push({ item: `seed #${index}`, stage: 'encode', reason: failureMessage(err) });
      }
    },
  );
  // The run lists only the first failures; the rest are counted.
  result.failures = result.failures.slice(0, MAX_FAILURES_LISTED);
  return result;
}
