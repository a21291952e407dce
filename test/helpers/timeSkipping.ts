import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../src/activities';
import { roleNames, type ResolvedConfig } from '../../src/schemas/config';
import type { DatasetRecord, Usage } from '../../src/schemas/records';
import type { RunInput } from '../../src/schemas/run';
import type { ScheduleActivities } from '../../src/schedule/activities';
import type { codeclmRun } from '../../src/workflows';
import { installCliRuntime } from '../../src/temporal/logging';
import { testServerPath } from '../../src/temporal/testServer';
import { prebuiltWorkflowBundle } from '../../src/worker';
import { roleQueue } from '../../src/workflows/queues';
import { uniqueQueue } from './env';
import { simConfig } from './config';

/**
 * Workflow logic on Temporal's time-skipping test server, with the activities replaced by scripted
 * fakes: what the workflows decide (pause, budget, rounds, continue-as-new, retries) without an LLM,
 * a file or a wall-clock wait. Timers and retry back-offs pass at once while the test waits on a
 * result; `env.sleep` moves the server's clock on by hours in milliseconds.
 *
 * The server is provisioned once per machine (src/temporal/testServer.ts, into ~/.cache/codeclm).
 * Tests here drive the workflows only through their public surface: workflow type names, the
 * `progress` query, the `pause` / `resume` signals and the activity names.
 */
export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  // Errors only: the SDK warns at every worker start that the test server lacks newer features.
  installCliRuntime({ ...process.env, CODECLM_LOG_LEVEL: process.env.CODECLM_LOG_LEVEL ?? 'ERROR' });
  const path = await testServerPath();
  const start = () =>
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
  try {
    return await start();
  } catch {
    // The SDK gives the server 5 s to listen; a JVM server on a busy machine can miss that once.
    return await start();
  }
}

/**
 * One time-skipping server for a test file and a fresh fake worker per test: registers the jest
 * hooks that start the server, stop each test's worker and tear the server down.
 */
export function useTimeSkipping() {
  let worker: FakeWorker | undefined;
  const suite = {
    env: undefined as unknown as TestWorkflowEnvironment,
    /** Workers with fakes scripted by `script`, stopped after the test. */
    async startWorker(script: FakeScript = {}): Promise<FakeWorker> {
      worker = await startFakeWorker(suite.env, script);
      return worker;
    },
    /** Starts codeclmRun `runId` on `w`'s queue with fakeRunInput(patch), plus `extra` input fields. */
    startRun(
      w: FakeWorker,
      runId: string,
      patch: Parameters<typeof fakeRunInput>[2] = {},
      extra: { tuning?: { maxHistoryEvents?: number } } = {},
    ) {
      return suite.env.client.workflow.start<typeof codeclmRun>('codeclmRun', {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [{ ...fakeRunInput(runId, w.taskQueue, patch), ...extra }],
      });
    },
  };
  beforeAll(async () => {
    suite.env = await startTimeSkipping();
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(async () => {
    await suite.env?.teardown();
  });
  return suite;
}

/** What the fake LLM and file activities do; every field has a default that keeps every pair. */
export interface FakeScript {
  /** Seeds in the (imaginary) seed file. */
  seeds?: number;
  /** Metadata pool entries buildPool reports. */
  pool?: number;
  /** The judge's scores for an instruction (default strong 9, target 3: kept, strong). */
  verdict?: (instruction: string) => { strong: number; target: number };
  /** Thrown by an LLM activity's attempt (from 1), or undefined to answer. */
  fault?: (activity: LlmActivity, attempt: number, input: unknown) => Error | undefined;
  /** Runs inside saveRecord (the n-th record saved, from 1) before it returns. */
  onSaveRecord?: (n: number, workflowId: string) => Promise<void>;
}

export const llmActivityNames = [
  'encodeSeed',
  'decodeInstructions',
  'writeRubrics',
  'improveInstruction',
  'answer',
  'judge',
] as const;
export type LlmActivity = (typeof llmActivityNames)[number];

export interface Fake {
  activities: Partial<Activities> & ScheduleActivities;
  /** LLM activity attempts started, by activity. */
  calls: Record<LlmActivity, number>;
  /** Every LLM attempt started. */
  llmCalls(): number;
  records: DatasetRecord[];
  /** Versions prepared and published by scheduled refreshes, in order. */
  versions: { prepared: string[]; published: string[] };
  /** Workflow ids that ran an activity. */
  workflowIds: Set<string>;
  /** Workflow ids that ran `activity` (the entries are those that wrote rubrics). */
  ranBy(activity: string): string[];
}

const noChange = { current: 0, previous: 0, added: 0, removed: 0, unchanged: 0 };

const usage = (stage: string, role: string): Usage => ({
  [`${stage}/${role}`]: { calls: 1, promptTokens: 10, completionTokens: 5 },
});

export function fakeActivities(script: FakeScript = {}): Fake {
  const calls = Object.fromEntries(llmActivityNames.map((n) => [n, 0])) as Record<LlmActivity, number>;
  const fake: Fake = {
    calls,
    llmCalls: () => Object.values(calls).reduce((a, b) => a + b, 0),
    records: [],
    versions: { prepared: [], published: [] },
    workflowIds: new Set(),
    ranBy: (activity) => [...(byActivity.get(activity) ?? [])],
    activities: undefined as unknown as Fake['activities'],
  };
  const byActivity = new Map<string, Set<string>>();
  const seen = () => {
    const info = Context.current().info;
    const workflowId = info.workflowExecution?.workflowId ?? '';
    fake.workflowIds.add(workflowId);
    if (!byActivity.has(info.activityType)) byActivity.set(info.activityType, new Set());
    byActivity.get(info.activityType)!.add(workflowId);
    return { attempt: info.attempt, workflowId };
  };
  /** Counts the attempt, then fails it if the script says so. */
  const llm = (name: LlmActivity, input: unknown) => {
    const { attempt } = seen();
    calls[name]++;
    const err = script.fault?.(name, attempt, input);
    if (err) throw err;
  };
  const verdict = script.verdict ?? (() => ({ strong: 9, target: 3 }));
  fake.activities = {
    async prepareSeeds() {
      seen();
      return { count: script.seeds ?? 4, format: 'jsonl', field: 'instruction', warnings: [], skipped: [] };
    },
    async encodeSeed(input) {
      llm('encodeSeed', input);
      return {
        seedId: `s${input.index}`,
        metadata: { use_case: 'coding', skills: ['python'] },
        usage: usage('encode', 'strong'),
      };
    },
    async buildPool() {
      seen();
      return { size: script.pool ?? 2 };
    },
    async readPoolEntry(input) {
      seen();
      return { metadata: { use_case: `use case ${input.entry}`, skills: ['python'] } };
    },
    async writeRubrics(input) {
      llm('writeRubrics', input);
      return {
        rubrics: [{ rubric: 'needs an edge case', action: 'add an edge case' }],
        usage: usage('rubrics', 'strong'),
      };
    },
    async decodeInstructions(input) {
      llm('decodeInstructions', input);
      const instructions = Array.from({ length: input.count }, (_, j) => `${input.label} #${j}`);
      return { instructions, usage: usage('decode', 'strong') };
    },
    async improveInstruction(input) {
      llm('improveInstruction', input);
      return { instruction: `${input.instruction} (improved)`, usage: usage('improve', 'strong') };
    },
    async answer(input) {
      llm('answer', input);
      return { text: `${input.who}: ${input.instruction}`, usage: usage('answer', input.who) };
    },
    async judge(input) {
      llm('judge', input);
      const v = verdict(input.instruction);
      const score = (answer: string) => (answer.startsWith('strong:') ? v.strong : v.target);
      return {
        scores: { score_a: score(input.answerA), score_b: score(input.answerB) },
        usage: usage('judge', 'judge'),
      };
    },
    async claim() {
      return true;
    },
    async saveRecord(input) {
      const { workflowId } = seen();
      fake.records.push(input.record);
      await script.onSaveRecord?.(fake.records.length, workflowId);
    },
    async saveJudgement() {
      seen();
    },
    async saveFailure() {
      seen();
    },
    async finalizeRun() {
      seen();
      return { dataset: 'dataset.jsonl', kept: fake.records.length };
    },
    async prepareVersion(input) {
      seen();
      fake.versions.prepared.push(input.version);
      return { versionDir: `${input.outDir}/versions/${input.version}` };
    },
    async publishVersion(input) {
      seen();
      fake.versions.published.push(input.version);
      return {
        versionDir: `${input.outDir}/versions/${input.version}`,
        latest: true,
        changes: {
          previous: fake.versions.published.at(-2) ?? null,
          seeds: noChange,
          pairs: { ...noChange, current: fake.records.length, added: fake.records.length },
          metadata: {
            use_cases_jsd: null,
            skills_jsd: null,
            use_cases_added: [],
            use_cases_removed: [],
            skills_added: [],
            skills_removed: [],
          },
        },
      };
    },
  };
  return fake;
}

/** A retryable failure, like a 503 the LLM boundary passes on. */
export function transient(message = 'simulated 503'): Error {
  return ApplicationFailure.retryable(message, 'LlmServerError');
}

export interface FakeWorker {
  taskQueue: string;
  fake: Fake;
  stop(): Promise<void>;
}

/**
 * Workers on a fresh task queue and its role queues (as src/worker.ts lays them out), running the
 * real workflow code and the fake activities.
 */
export async function startFakeWorker(
  env: TestWorkflowEnvironment,
  script: FakeScript = {},
): Promise<FakeWorker> {
  const fake = fakeActivities(script);
  const taskQueue = uniqueQueue('time-skipping');
  const bundle = await prebuiltWorkflowBundle();
  const queues = [taskQueue, ...roleNames.map((role) => roleQueue(taskQueue, role))];
  const workers = await Promise.all(
    queues.map((queue, i) =>
      Worker.create({
        connection: env.nativeConnection,
        taskQueue: queue,
        activities: fake.activities,
        ...(i === 0
          ? bundle
            ? { workflowBundle: bundle }
            : { workflowsPath: require.resolve('../../src/workflows') }
          : {}),
      }),
    ),
  );
  const running = workers.map((w) => w.run());
  return {
    taskQueue,
    fake,
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
    },
  };
}

/** A run's input with paper defaults but for what the test sets; the role URLs are never called. */
export function fakeRunInput(
  runId: string,
  taskQueue: string,
  patch: { method?: Partial<ResolvedConfig['method']>; limits?: Partial<ResolvedConfig['limits']> } = {},
): RunInput {
  const config = simConfig('http://fake-llm.invalid/v1', {
    method: { maxIterations: 1, decodeBatch: 10, ...patch.method },
    limits: { size: 4, concurrency: 4, topUpRounds: 2, ...patch.limits },
  });
  return { runId, seedsFile: 'seeds.jsonl', outDir: `/fake/${runId}`, skipInvalid: false, config, taskQueue };
}

const EventType = temporal.api.enums.v1.EventType;

/** Pause state changes a workflow is told of: the run's own signals, and `control` from its parent. */
function pauseChange(event: temporal.api.history.v1.IHistoryEvent): boolean | undefined {
  const a = event.workflowExecutionSignaledEventAttributes;
  if (!a) return undefined;
  const arg = a.input?.payloads?.[0];
  const value: unknown = arg ? defaultPayloadConverter.fromPayload(arg) : undefined;
  if (a.signalName === 'pause') return true;
  if (a.signalName === 'resume') return false;
  if (a.signalName === 'control') return (value as { paused?: boolean } | undefined)?.paused === true;
  return undefined;
}

/**
 * Reads each workflow's history for what it did while it knew it was paused: a pause takes effect at
 * the first workflow task that starts after the signal is recorded (a task already running when the
 * signal came decided without it). `paused`: the workflows that were paused at some point (so the
 * check had something to check); `llmCallsWhilePaused`: LLM activities they scheduled meanwhile,
 * which must be none (what was in flight may finish).
 */
export async function pauseAudit(
  client: Client,
  workflowIds: Iterable<string>,
): Promise<{ paused: string[]; llmCallsWhilePaused: { workflowId: string; activity: string }[] }> {
  const names = new Set<string>(llmActivityNames);
  const audit = {
    paused: [] as string[],
    llmCallsWhilePaused: [] as { workflowId: string; activity: string }[],
  };
  for (const workflowId of workflowIds) {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    let signalled: boolean | undefined;
    let paused = false;
    for (const event of history.events ?? []) {
      const change = pauseChange(event);
      if (change !== undefined) signalled = change;
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED && signalled !== undefined) {
        paused = signalled;
        signalled = undefined;
        if (paused && !audit.paused.includes(workflowId)) audit.paused.push(workflowId);
      }
      const scheduled = event.activityTaskScheduledEventAttributes?.activityType?.name;
      if (paused && scheduled && names.has(scheduled))
        audit.llmCallsWhilePaused.push({ workflowId, activity: scheduled });
    }
  }
  return audit;
}
