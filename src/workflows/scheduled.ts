/**
 * One refresh of a scheduled dataset (`codeclm schedule create`, src/cli/schedule.ts). Each action of
 * the Temporal Schedule starts this workflow, which:
 *
 *   1. names this version `<UTC timestamp>-<short id>` and creates DIR/versions/<version>/;
 *   2. runs the whole CodecLM run (codeclmRun) into that directory, with run id = this workflow's id,
 *      in this workflow itself, so `codeclm status|pause|resume|cancel|wait <workflowId>` work on a
 *      scheduled run exactly as on any run (same `progress` query and signals);
 *   3. writes what changed against the previous version and moves DIR/latest to the new version.
 *
 * The seed file is read by the run's prepareSeeds activity, so each refresh sees the file as it is
 * then (and snapshots it into the version).
 */
import { proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { RunResult } from '../schemas/run';
import type { PublishResult, ScheduleActivities } from '../schedule/activities';
import { codeclmRun } from './pipeline';

export interface ScheduledRunInput {
  scheduleId: string;
  /** The schedule's out dir (versions go under DIR/versions/). */
  outDir: string;
  seedsFile: string;
  field?: string;
  skipInvalid: boolean;
  /** Resolved when the schedule was created; keyless (workers read keys from their own env). */
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface ScheduledRunResult extends RunResult {
  scheduleId: string;
  version: string;
  latest: boolean;
  changes: PublishResult['changes'];
}

/** `20250102T030405.678Z-1a2b3c4d`: sorts by start time; the suffix is this execution's own id. */
export function versionName(at: Date, runId: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '');
  const short = runId.replace(/[^A-Za-z0-9]/g, '').slice(0, 8) || 'x';
  return `${stamp}-${short}`;
}

export async function codeclmScheduledRun(input: ScheduledRunInput): Promise<ScheduledRunResult> {
  const info = workflowInfo();
  const acts = proxyActivities<ScheduleActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ['InputError'],
    },
  });
  // Workflow time: the same on replay.
  const version = versionName(new Date(), info.runId);
  const { versionDir } = await acts.prepareVersion({
    outDir: input.outDir,
    version,
    workflowId: info.workflowId,
  });
  upsertMemo({ outDir: versionDir, version, scheduleOutDir: input.outDir });
  const result = await codeclmRun({
    runId: info.workflowId,
    seedsFile: input.seedsFile,
    outDir: versionDir,
    field: input.field,
    skipInvalid: input.skipInvalid,
    config: input.config,
    taskQueue: input.taskQueue,
  });
  const published = await acts.publishVersion({ outDir: input.outDir, version, workflowId: info.workflowId });
  return {
    ...result,
    scheduleId: input.scheduleId,
    version,
    latest: published.latest,
    changes: published.changes,
  };
}
