/**
 * The instruction loop's port (src/workflows/loop.ts, InstructionSteps) made of Temporal activities:
 * how an entry workflow (src/workflows/entry.ts) runs each of its instructions, and how the legacy
 * instruction workflow (src/workflows/legacy/) ran one. Every model call is its own activity on its
 * role's queue, so a crash repeats at most the calls in flight; pause holds back new calls.
 */
import { CancellationScope, patched } from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import { fileActivities, llmActivities } from './activities';
import { answerBoth, judgeBothOrders } from './contrast';
import type { Control } from './control';
import { isItemFailure } from './failures';
import type { InstructionSteps } from './loop';
import { JUDGEMENT_RECORDS } from './patches';

/** What an instruction's steps need from the workflow that runs them. */
export interface ActivityContext {
  runId: string;
  outDir: string;
  config: ResolvedConfig;
  llm: ReturnType<typeof llmActivities>;
  files: ReturnType<typeof fileActivities>;
  /** Paused: no new LLM call starts (the calls in flight finish). */
  control: Control;
}

/** The activity proxies an instruction's steps use, on the run's queues. */
export function instructionActivities(config: ResolvedConfig, taskQueue?: string) {
  return { llm: llmActivities(config.limits, taskQueue), files: fileActivities(taskQueue) };
}

/**
 * The steps as activities. Each returns the activity's promise itself (no async wrapper), so the
 * loop schedules them at the same point of a workflow task as the code it replaced did.
 */
export function activitySteps(ctx: ActivityContext): InstructionSteps {
  const { runId, outDir, llm, files, control } = ctx;
  const { method, roles } = ctx.config;
  return {
    runId,
    method,
    gate: control.gate,
    improve: (r) =>
      llm.improveInstruction({
        strong: roles.strong,
        method,
        metadata: r.metadata,
        instruction: r.instruction,
        action: r.action,
        label: r.label,
      }),
    answerBoth: (c) => answerBoth(llm, roles, c),
    judgeBothOrders: (c, answers) => judgeBothOrders(llm, roles.judge, c, answers),
    // Once saved, the outcome is reported even if the run is being cancelled meanwhile.
    saveKept: (record, judgement) =>
      CancellationScope.nonCancellable(() => files.saveRecord({ outDir, record, judgement })),
    saveDropped: (judgement) =>
      patched(JUDGEMENT_RECORDS) ? files.saveJudgement({ outDir, judgement }) : undefined,
    // Also in .work/failures/<id>.json, so a poison item can be looked at after the run.
    saveFailed: (id, failure) => files.saveFailure({ outDir, id, failure }),
    isItemFailure,
  };
}
