/**
 * The run's state and its message handlers, apart from the run's steps (src/workflows/run.ts), in
 * the style of Temporal's safe-message-handlers sample: progress (the `progress` query), the budget
 * (checked on every report, raised by `resume`), pause and resume (passed down the tree by Control),
 * the entries' `report` signals, and continue-as-new with what the run carries (counters and
 * positions, never texts).
 */
import {
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  makeContinueAsNewFunc,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { pricesOf, type Prices } from '../report/cost';
import { addUsage, usageTotals, type Usage } from '../schemas/records';
import {
  emptyCounters,
  type Counters,
  type Failure,
  type RunInput,
  type RunProgress,
  type RunResult,
} from '../schemas/run';
import {
  addFailures,
  Control,
  mergeCounters,
  reportSignal,
  wantsContinueAsNew,
  type ControlState,
  type ProgressReport,
  type Tuning,
} from './control';
import { STOP_WHEN_DONE } from './patches';

/** The `progress` query's answer: the run's progress and its roles' prices, so `status` shows cost. */
export type ProgressView = RunProgress & { prices?: Prices };
export const progressQuery = defineQuery<ProgressView>('progress');
export const pauseSignal = defineSignal<[string?]>('pause');
/** Resume, optionally with raised budgets (a run paused by its budget needs them raised to go on). */
export interface ResumeOptions {
  budgetTokens?: number;
  budgetCalls?: number;
}
export const resumeSignal = defineSignal<[ResumeOptions?]>('resume');

/** What the run carries through continue-as-new: counters and positions, never texts. */
export interface RunCarry {
  progress: RunProgress;
  control: ControlState;
  budget: ResumeOptions;
  /** Next encode chunk to start. */
  encodeNext: number;
  round: number;
  /** Instructions shared over the pool in this round. */
  roundTotal: number;
  /** Next entry (position in the round's work list) to start. */
  nextEntry: number;
  /** Runs of this workflow id so far (continue-as-new count). */
  segments: number;
}

export interface RunWorkflowInput extends RunInput {
  carry?: RunCarry;
  tuning?: Tuning;
}

type RunWorkflow = (input: RunWorkflowInput) => Promise<RunResult>;

export class RunState {
  readonly carry: RunCarry;
  readonly progress: RunProgress;
  readonly counters: Counters;
  readonly control: Control;
  /** STOP_WHEN_DONE, decided before the first command so a history from before replays as it ran. */
  readonly stopWhenDone: boolean;

  constructor(private readonly input: RunWorkflowInput) {
    this.carry = input.carry ?? firstCarry(input);
    this.progress = this.carry.progress;
    this.counters = this.progress.counters;
    this.control = new Control(this.carry.control);
    this.stopWhenDone = patched(STOP_WHEN_DONE);
    // A query answer only (no command): prices from the run's config, which holds no keys.
    const prices = pricesOf(input.config);
    setHandler(progressQuery, () => ({ ...this.progress, prices }));
    setHandler(pauseSignal, (reason) => this.pause(reason));
    setHandler(resumeSignal, (opts) => this.resume(opts));
    setHandler(reportSignal, (report) => this.report(report));
  }

  /** The run has kept its target size: nothing new starts. */
  done(): boolean {
    return this.stopWhenDone && this.counters.kept >= this.input.config.limits.size;
  }

  /** Usage and failures of the run's own steps (entries report theirs by signal). */
  record(usage: Usage | undefined, failures: Failure[] = []): void {
    addUsage(this.progress.usage, usage);
    addFailures(this.progress.failures, failures);
    this.checkBudget();
  }

  /** The history is long enough to continue-as-new at the next safe point. */
  wantsContinueAsNew(): boolean {
    return wantsContinueAsNew(this.input.tuning);
  }

  /** Continues as a new run of this workflow id, carrying counters and positions. */
  async continueAsNew(): Promise<never> {
    await condition(allHandlersFinished);
    this.carry.control = this.control.state;
    this.carry.segments++;
    const next = makeContinueAsNewFunc<RunWorkflow>({ memo: workflowInfo().memo });
    return next({ ...this.input, carry: this.carry });
  }

  private pause(reason: string | undefined): void {
    const { state } = this.progress;
    if (state === 'running' || state === 'paused') this.setPaused(true, reason ?? 'paused by user');
  }

  private resume(opts: ResumeOptions | undefined): void {
    const { budget } = this.carry;
    if (opts?.budgetTokens !== undefined) budget.budgetTokens = opts.budgetTokens;
    if (opts?.budgetCalls !== undefined) budget.budgetCalls = opts.budgetCalls;
    if (this.progress.state !== 'paused') return;
    // Still over the (unraised) budget: stays paused, with the budget's reason.
    const over = budgetReached(this.progress, budget);
    this.setPaused(over !== undefined, over);
  }

  private report(report: ProgressReport): void {
    mergeCounters(this.counters, report.counters);
    addUsage(this.progress.usage, report.usage);
    addFailures(this.progress.failures, report.failures);
    this.checkBudget();
    if (this.done()) this.control.finish();
  }

  private setPaused(paused: boolean, reason?: string): void {
    this.control.set(paused, reason);
    this.progress.state = paused ? 'paused' : 'running';
    this.progress.pausedReason = paused ? reason : undefined;
  }

  private checkBudget(): void {
    if (this.progress.state !== 'running') return;
    const reason = budgetReached(this.progress, this.carry.budget);
    if (reason) this.setPaused(true, reason);
  }
}

function firstCarry(input: RunWorkflowInput): RunCarry {
  const { config, outDir, runId } = input;
  return {
    progress: {
      runId,
      phase: 'starting',
      state: 'running',
      outDir,
      size: config.limits.size,
      counters: emptyCounters(),
      usage: {},
      failures: [],
      startedAt: Date.now(),
    },
    control: { paused: false, seq: 0 },
    budget: { budgetTokens: config.limits.budgetTokens, budgetCalls: config.limits.budgetCalls },
    encodeNext: 0,
    round: 1,
    roundTotal: config.limits.size,
    nextEntry: 0,
    segments: 1,
  };
}

function budgetReached(progress: RunProgress, budget: ResumeOptions): string | undefined {
  const used = usageTotals(progress.usage);
  const { budgetCalls, budgetTokens } = budget;
  if (budgetCalls !== undefined && used.calls >= budgetCalls) {
    return `call budget reached: ${used.calls} of ${budgetCalls} calls used; raise it with \`codeclm resume RUN_ID --budget-calls N\``;
  }
  const tokens = used.promptTokens + used.completionTokens;
  if (budgetTokens !== undefined && tokens >= budgetTokens) {
    return `token budget reached: ${tokens} of ${budgetTokens} tokens used; raise it with \`codeclm resume RUN_ID --budget-tokens N\``;
  }
  return undefined;
}
