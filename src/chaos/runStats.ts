import fs from 'node:fs';
import type { Client } from '@temporalio/client';
import type { RunResult } from '../schemas/run';

/**
 * What the scale measurements (src/chaos/measure.ts on a dev server, src/cluster/measure.ts on the
 * native cluster) and the chaos harness share: the simulator roles a measured run uses, a process's
 * memory, the longest history of a run's workflows, and the script entry point.
 */

/** Every role at the simulator, the judge at temperature 0 (as the paper's judge), keyed by `apiKeyEnv`. */
export function simRoles(baseURL: string, apiKeyEnv: string) {
  const role = (model: string) => ({ baseURL, model, apiKeyEnv });
  return {
    strong: role('sim-strong'),
    target: role('sim-target'),
    judge: { ...role('sim-strong'), temperature: 0 },
  };
}

/** A process's resident memory (VmRSS) or its peak (VmHWM) in kB; 0 once it has gone. */
export function rssKb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface HistoryStats {
  workflows: number;
  longest: { events: number; workflowId: string };
}

/** How many workflows run `runId` made, and which of them has the longest history. */
export async function historyStats(client: Client, runId: string): Promise<HistoryStats> {
  let longest = { events: 0, workflowId: '' };
  let workflows = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH "${runId}"` })) {
    workflows++;
    if ((wf.historyLength ?? 0) > longest.events)
      longest = { events: wf.historyLength ?? 0, workflowId: wf.workflowId };
  }
  return { workflows, longest };
}

/** The figures of a finished run that every measurement reports. */
export function runFigures(result: RunResult, history: HistoryStats) {
  return {
    kept: result.counters.kept,
    instructions: result.counters.instructions,
    llm_calls: Object.values(result.usage).reduce((n, u) => n + u.calls, 0),
    workflow_executions: history.workflows,
    longest_history_events: history.longest.events,
    longest_history_workflow: history.longest.workflowId,
  };
}

/** A measurement script's end: its result as one JSON line and exit 0, or the stack and exit 1. */
export function printResultAndExit(result: Promise<unknown>): void {
  result.then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
      process.exit(1);
    },
  );
}
