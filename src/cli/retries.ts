import type { WorkflowClient } from '@temporalio/client';

/**
 * Activities that are retrying right now, from Temporal's own pending-activity info: a run (or an
 * evaluation) and its open child workflows (encode chunks, pool entries, eval chunks) are
 * described, and every pending activity on its second attempt or later counts as retrying, with
 * its attempt number and the message of its last failure. This is what makes a provider outage or
 * a 429 storm visible in `status` and in the progress of `run` and `eval` (issue 12), where the
 * counters alone would just stand still.
 */
export interface StageRetries {
  /** Activities of this stage on their second attempt or later. */
  retrying: number;
  max_attempt: number;
  last_error?: string;
}

export interface RetrySummary {
  retrying: number;
  max_attempt: number;
  /** The failure message of the retrying activity that started its last attempt most recently. */
  last_error?: string;
  per_stage: Record<string, StageRetries>;
}

/** Pipeline stage of an activity type (the LLM activities; any other keeps its own name). */
const STAGE_OF: Record<string, string> = {
  encodeSeed: 'encode',
  decodeInstructions: 'decode',
  writeRubrics: 'rubrics',
  improveInstruction: 'improve',
  answer: 'answer',
  judge: 'judge',
};

/** Children described per level at most: a run has only its window's children open at a time. */
const MAX_CHILDREN = 100;
/** Levels of children: run -> entry -> instruction (runs from before inlining). */
const MAX_DEPTH = 2;
const MAX_ERROR_CHARS = 300;

export interface Pending {
  stage: string;
  attempt: number;
  error?: string;
  startedMs: number;
}

export function stageOf(activityType: string): string {
  return STAGE_OF[activityType] ?? activityType;
}

/** One line, bounded: an SDK or HTTP error message can hold a whole response body. */
export function oneLine(message: string): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_ERROR_CHARS ? `${flat.slice(0, MAX_ERROR_CHARS - 3)}...` : flat;
}

/** The retrying activities of `workflowId` and its open children. Workflows that closed meanwhile are skipped. */
export async function pendingRetries(client: WorkflowClient, workflowId: string): Promise<RetrySummary> {
  const pending: Pending[] = [];
  let level = [workflowId];
  for (let depth = 0; depth <= MAX_DEPTH && level.length; depth++) {
    const next: string[] = [];
    const described = await Promise.all(
      level.slice(0, MAX_CHILDREN).map((id) =>
        client
          .getHandle(id)
          .describe()
          .catch(() => undefined),
      ),
    );
    for (const d of described) {
      if (!d || d.status.name !== 'RUNNING') continue;
      for (const a of d.raw.pendingActivities ?? []) {
        pending.push({
          stage: stageOf(a.activityType?.name ?? 'activity'),
          attempt: a.attempt ?? 1,
          error: a.lastFailure?.message ? oneLine(a.lastFailure.message) : undefined,
          startedMs: Number(a.lastStartedTime?.seconds ?? a.scheduledTime?.seconds ?? 0) * 1000,
        });
      }
      for (const c of d.raw.pendingChildren ?? []) if (c.workflowId) next.push(c.workflowId);
    }
    level = next;
  }
  return summarise(pending);
}

export function summarise(pending: Pending[]): RetrySummary {
  const summary: RetrySummary = { retrying: 0, max_attempt: 0, per_stage: {} };
  // The newest failure overall and per stage: the one whose attempt started last.
  const latest = new Map<string, number>();
  const newer = (key: string, ms: number) => {
    if (ms < (latest.get(key) ?? -1)) return false;
    latest.set(key, ms);
    return true;
  };
  for (const p of pending) {
    if (p.attempt < 2) continue;
    summary.retrying++;
    summary.max_attempt = Math.max(summary.max_attempt, p.attempt);
    const s = (summary.per_stage[p.stage] ??= { retrying: 0, max_attempt: 0 });
    s.retrying++;
    s.max_attempt = Math.max(s.max_attempt, p.attempt);
    if (p.error) {
      if (newer(`stage:${p.stage}`, p.startedMs)) s.last_error = p.error;
      if (newer('all', p.startedMs)) summary.last_error = p.error;
    }
  }
  return summary;
}

/**
 * "retrying: 12 activities (answer 8, judge 4), attempt up to 5, last error: LLM endpoint
 * unavailable (HTTP 503) ...", or undefined when nothing retries.
 */
export function retryLine(s: RetrySummary): string | undefined {
  if (s.retrying === 0) return undefined;
  const stages = Object.entries(s.per_stage)
    .sort((a, b) => b[1].retrying - a[1].retrying || a[0].localeCompare(b[0]))
    .map(([stage, r]) => `${stage} ${r.retrying}`)
    .join(', ');
  return (
    `retrying: ${s.retrying} ${s.retrying === 1 ? 'activity' : 'activities'} (${stages}), ` +
    `attempt up to ${s.max_attempt}${s.last_error ? `, last error: ${s.last_error}` : ''}`
  );
}

/**
 * Polls pendingRetries every `everyMs` while a command waits for its workflow, and reports each
 * change of the summary line (and once when the retries are over) through `say`.
 */
export function watchRetries(
  client: WorkflowClient,
  workflowId: string,
  say: (line: string) => void,
  everyMs = 5000,
): () => void {
  let last: string | undefined;
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const line = retryLine(await pendingRetries(client, workflowId));
      if (!stopped && line !== last) {
        if (line) say(line);
        else if (last) say('retrying: none any more (the activities that were retrying went through)');
        last = line;
      }
    } catch {
      // The server may be busy or restarting: the next tick tries again.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
