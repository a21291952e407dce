/**
 * Pause/resume and progress plumbing shared by the pipeline's workflows (issue 4).
 *
 * - Control: the pause state flows down the tree. The run owns it (its pause/resume signals, its
 *   budget); every child gets the state in its input and, while it runs, each change by a
 *   `control` signal, which it forwards to its own running children. A state carries a sequence
 *   number set by the run, so a late signal never undoes a newer one. Paused workflows start no new
 *   child and no new LLM activity; what is in flight finishes.
 * - Reporter: an entry workflow sends the counters, usage and failures of finished items to the run
 *   by `report` signals every few items, so the run's progress (and its budget check) is live and
 *   the run's state never depends on child results. Each delta is sent once (a signal command is
 *   recorded in the sender's history), and the sender waits for delivery before it completes or
 *   continues-as-new, so the run has every report of a child before it sees the child close.
 * - wantsContinueAsNew: the history bound every workflow of the tree checks at safe points.
 */
import {
  condition,
  defineSignal,
  type ChildWorkflowHandle,
  type ChildWorkflowOptions,
  getExternalWorkflowHandle,
  log,
  startChild,
  workflowInfo,
  type Workflow,
} from '@temporalio/workflow';
import { addUsage, type Usage } from '../schemas/records';
import { emptyCounters, MAX_FAILURES_LISTED, type Counters, type Failure } from '../schemas/run';

export interface ControlState {
  paused: boolean;
  reason?: string;
  /** Set by the run, +1 per change. */
  seq: number;
  /** The run has kept its target size: start no new instruction or decode batch (in flight finishes). */
  enough?: boolean;
}

/** Parent -> child: the current pause state. */
export const controlSignal = defineSignal<[ControlState]>('control');

/** Child -> run: what finished since the last report. */
export interface ProgressReport {
  counters: Counters;
  usage: Usage;
  failures: Failure[];
}
export const reportSignal = defineSignal<[ProgressReport]>('report');

export interface Tuning {
  /** Continue-as-new once a workflow's history has this many events (default 10,000). */
  maxHistoryEvents?: number;
}

const DEFAULT_MAX_HISTORY_EVENTS = 10_000;

/** True when this workflow should continue-as-new at its next safe point. */
export function wantsContinueAsNew(tuning?: Tuning): boolean {
  const info = workflowInfo();
  return (
    info.continueAsNewSuggested ||
    info.historyLength >= (tuning?.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS)
  );
}

export class Control {
  state: ControlState;
  /** Workflow ids of the children running now (at most the window). */
  private readonly children = new Set<string>();

  constructor(initial?: ControlState) {
    this.state = initial ?? { paused: false, seq: 0 };
  }

  /** Children running now. */
  get running(): number {
    return this.children.size;
  }

  get paused(): boolean {
    return this.state.paused;
  }

  /** The run's own change (signal or budget). */
  set(paused: boolean, reason?: string): void {
    if (paused === this.state.paused && reason === this.state.reason) return;
    this.apply({ ...this.state, paused, reason, seq: this.state.seq + 1 });
  }

  /** The run's target is reached: tells every running child (and the children they start) to stop starting work. */
  finish(): void {
    if (this.state.enough) return;
    this.apply({ ...this.state, enough: true, seq: this.state.seq + 1 });
  }

  get enough(): boolean {
    return this.state.enough === true;
  }

  /** A state from the parent: applied unless it is older than the one we have. */
  receive(state: ControlState): void {
    if (state.seq > this.state.seq) this.apply(state);
  }

  private apply(state: ControlState): void {
    this.state = state;
    for (const id of this.children) this.forward(id);
  }

  private forward(workflowId: string): void {
    // The child may have closed meanwhile: nothing to tell it then.
    getExternalWorkflowHandle(workflowId)
      .signal(controlSignal, this.state)
      .catch((err: unknown) => log.debug('control signal not delivered', { workflowId, error: String(err) }));
  }

  /** Resolves when not paused: awaited before starting anything new. */
  gate = (): Promise<void> => condition(() => !this.state.paused);

  /** Starts a child with the current state in its input, keeps it informed until it closes, returns its result. */
  async child<T extends Workflow>(
    fn: T,
    opts: { workflowId: string; taskQueue: string; input: (control: ControlState) => Parameters<T>[0] },
  ): Promise<Awaited<ReturnType<T>>> {
    const sent = this.state;
    const start = startChild as (
      fn: T,
      options: ChildWorkflowOptions & { args: unknown[] },
    ) => Promise<ChildWorkflowHandle<T>>;
    const handle = await start(fn, {
      workflowId: opts.workflowId,
      taskQueue: opts.taskQueue,
      args: [opts.input(sent)],
    });
    this.children.add(opts.workflowId);
    try {
      if (this.state.seq !== sent.seq) this.forward(opts.workflowId);
      return (await handle.result()) as Awaited<ReturnType<T>>;
    } finally {
      this.children.delete(opts.workflowId);
    }
  }
}

export function mergeCounters(into: Counters, from: Counters): void {
  for (const key of Object.keys(from) as (keyof Counters)[]) {
    const value = from[key];
    if (value === undefined) continue;
    if (typeof value === 'number') {
      if (key === 'rounds') continue;
      // A counter newer than the run's carried state (leftInFlight, notStarted) starts at 0.
      (into[key] as number) = ((into[key] as number | undefined) ?? 0) + value;
    } else {
      const target = into[key] as Record<string, number>;
      for (const [k, v] of Object.entries(value)) target[k] = (target[k] ?? 0) + v;
    }
  }
}

export function addFailures(into: Failure[], failures: Failure[]): void {
  for (const f of failures) if (into.length < MAX_FAILURES_LISTED) into.push(f);
}

/** Accumulates finished items and sends them to the run every `every` items (and on flush). */
export class Reporter {
  private pending: ProgressReport = { counters: emptyCounters(), usage: {}, failures: [] };
  private items = 0;
  private sending = 0;

  constructor(
    private readonly runId: string,
    private readonly every: number,
  ) {}

  get counters(): Counters {
    return this.pending.counters;
  }

  /** `now`: send at once (a kept pair, so the run learns as soon as it has reached its size). */
  add(usage: Usage | undefined, failures: Failure[] = [], items = 1, now = false): void {
    addUsage(this.pending.usage, usage);
    addFailures(this.pending.failures, failures);
    this.items += items;
    if (now || this.items >= this.every) this.send();
  }

  private send(): void {
    const report = this.pending;
    this.pending = { counters: emptyCounters(), usage: {}, failures: [] };
    this.items = 0;
    this.sending++;
    getExternalWorkflowHandle(this.runId)
      .signal(reportSignal, report)
      .catch((err: unknown) =>
        log.warn('progress report not delivered to the run', { runId: this.runId, error: String(err) }),
      )
      .finally(() => this.sending--);
  }

  /** Sends what is pending and waits until every report has been delivered. */
  async flush(): Promise<void> {
    const c = this.pending.counters;
    if (
      this.items > 0 ||
      c.instructions > 0 ||
      c.failed > 0 ||
      (c.leftInFlight ?? 0) > 0 ||
      (c.notStarted ?? 0) > 0 ||
      Object.keys(this.pending.usage).length > 0 ||
      this.pending.failures.length > 0
    )
      this.send();
    await condition(() => this.sending === 0);
  }
}
