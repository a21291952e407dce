/**
 * The state and steps of one entry workflow (src/workflows/entry.ts), in the style of Temporal's
 * safe-message-handlers sample: the port of the CodecLM loop (generateEntry, src/workflows/loop.ts)
 * made of activities, with the entry's pause state (Control and its `control` signal), its reports
 * to the run, its decode-ahead queue, and how it ends (continue-as-new, cancellation).
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import { usageInFailure } from '../schemas/records';
import { failureMessage } from '../util/failure';
import { fileActivities, llmActivities } from './activities';
import { Control, controlSignal, Reporter, wantsContinueAsNew } from './control';
import { isItemFailure } from './failures';
import { activitySteps } from './instruction';
import { claimInstruction, DEFAULT_DECODE_BATCH, startInstructionChild } from './legacy';
import { tally, type Decoded, type EntryRubrics, type EntrySteps, type InstructionOutcome } from './loop';
import { INLINE_INSTRUCTIONS, QUALITY_SCREEN, STOP_WHEN_DONE } from './patches';
import { needsScreening, screenBatch } from './screen';
import { DecodeAhead } from './window';

import type { EntryInput, EntryResult, generateForEntry } from './entry';

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** State and steps of one entry workflow: the port of generateEntry, made of activities. */
export class EntryState {
  private readonly config: ResolvedConfig;
  private readonly queue: string;
  private readonly llm: ReturnType<typeof llmActivities>;
  private readonly files: ReturnType<typeof fileActivities>;
  private readonly control: Control;
  private readonly reporter: Reporter;
  private readonly batchSize: number;
  private readonly batches: number;
  private readonly name: string;
  /** Patches, decided before the first command so a history from before one replays as it ran. */
  private readonly inline: boolean;
  /** Decode batches go through screenInstructions (src/quality) before any instruction starts. */
  private readonly screen: boolean;
  private readonly stopWhenDone: boolean;
  /** Decoded instructions waiting for, and running in, the entry's window. */
  private readonly ahead: DecodeAhead<Decoded>;
  /** Pairs this entry has kept (this segment). */
  private keptHere = 0;
  /** Set once rubrics are written (the legacy instruction workflows take them in their input). */
  private rubrics?: EntryRubrics;
  private rubricsFailed = false;

  constructor(private readonly input: EntryInput) {
    const { config } = input;
    this.config = config;
    this.queue = input.taskQueue ?? workflowInfo().taskQueue;
    this.llm = llmActivities(config.limits, this.queue);
    this.files = fileActivities(this.queue);
    this.control = new Control(input.control);
    setHandler(controlSignal, (state) => this.control.receive(state));
    this.batchSize = config.method.decodeBatch ?? DEFAULT_DECODE_BATCH;
    this.reporter = new Reporter(input.runId, this.batchSize);
    this.batches = Math.ceil(input.count / this.batchSize);
    this.name = `pool entry ${input.entry} round ${input.round}`;
    this.inline = patched(INLINE_INSTRUCTIONS);
    this.screen = needsScreening(config, input.decontaminate) && patched(QUALITY_SCREEN);
    this.stopWhenDone = patched(STOP_WHEN_DONE);
    this.ahead = new DecodeAhead<Decoded>({
      from: input.nextBatch ?? 0,
      batches: this.batches,
      window: input.window,
      gate: this.control.gate,
      enough: () => this.enough(),
      wantsStop: () => wantsContinueAsNew(input.tuning),
    });
  }

  /** generateEntry's steps: the instruction steps as activities, plus this entry's own. */
  steps(): EntrySteps {
    const { runId, outDir } = this.input;
    const ctx = { runId, outDir, config: this.config, llm: this.llm, files: this.files };
    return {
      ...activitySteps({ ...ctx, control: this.control }),
      writeRubrics: () => this.writeRubrics(),
      decode: (entry, batch, found) => this.decode(entry, batch, found),
      decodeAhead: (decode, refine) => this.ahead.run(decode, refine),
      settle: (item, refineHere) => this.settle(item, refineHere),
    };
  }

  /**
   * The run has kept its target size (it said so by the control state, or this entry kept all the
   * run still needed when it started): start nothing new.
   */
  private enough(): boolean {
    const { needed } = this.input;
    return this.stopWhenDone && (this.control.enough || (needed !== undefined && this.keptHere >= needed));
  }

  private planned(batch: number): number {
    return Math.min(this.batchSize, this.input.count - batch * this.batchSize);
  }

  private recordId(index: number): string {
    return `r${this.input.round}-e${pad(this.input.entry, 5)}-i${pad(index, 4)}`;
  }

  /** The entry's metadata from pool.json, and its rubrics (written once per entry, then read back). */
  private async writeRubrics(): Promise<EntryRubrics | undefined> {
    const { outDir, entry } = this.input;
    try {
      const metadata = (await this.files.readPoolEntry({ outDir, entry })).metadata;
      await this.control.gate();
      const written = await this.llm.writeRubrics({
        outDir,
        entry,
        strong: this.config.roles.strong,
        method: this.config.method,
        metadata,
      });
      this.reporter.add(written.usage, [], 0);
      this.rubrics = { metadata, rubrics: written.rubrics };
      return this.rubrics;
    } catch (err) {
      if (!isItemFailure(err)) throw err;
      this.failBatches(this.ahead.next, this.batches, 'rubrics', err);
      await this.reporter.flush();
      this.rubricsFailed = true;
      return undefined;
    }
  }

  /** Decodes one batch, screens it, and hands each instruction kept to `found`. */
  private async decode(entry: EntryRubrics, batch: number, found: (item: Decoded) => void): Promise<void> {
    const { config, input, reporter, batchSize } = this;
    try {
      const decoded = await this.llm.decodeInstructions({
        strong: config.roles.strong,
        method: config.method,
        metadata: entry.metadata,
        count: this.planned(batch),
        // Distinct per round and batch, so no batch repeats another one's instructions.
        batch: (input.round - 1) * 100_000 + batch + 1,
        label: `decode ${this.name} batch ${batch + 1}`,
      });
      reporter.add(decoded.usage, [], 0);
      const ids = decoded.instructions.map((_, j) => this.recordId(batch * batchSize + j));
      const screened = `r${input.round}-e${pad(input.entry, 5)}-b${pad(batch, 4)}`;
      const kept = this.screen
        ? await screenBatch(
            this.files,
            { ...input, batch: screened, ids, texts: decoded.instructions },
            reporter.counters,
            this.stopWhenDone,
          )
        : undefined;
      // (With STOP_WHEN_DONE an instruction is counted when it starts.)
      if (!this.stopWhenDone) reporter.counters.instructions += decoded.instructions.length;
      for (const [j, text] of decoded.instructions.entries()) {
        const id = ids[j]!;
        if (kept && !kept.has(id)) continue;
        // Legacy (src/workflows/legacy): before QUALITY_SCREEN, one claim per instruction.
        if (!this.screen && config.method.dedupeInstructions) {
          const fresh = await claimInstruction(this.files, input.outDir, text, id);
          if (!fresh) {
            if (!this.stopWhenDone) reporter.counters.instructions--;
            reporter.counters.duplicatesRemoved++;
            continue;
          }
        }
        found({ id, instruction: text });
      }
    } catch (err) {
      if (!isItemFailure(err)) throw err;
      this.failBatches(batch, batch + 1, 'decode', err);
    }
  }

  /** Runs one instruction (here, or as a legacy child workflow) and reports its outcome. */
  private async settle(item: Decoded, refineHere: () => Promise<InstructionOutcome>): Promise<void> {
    const { reporter } = this;
    if (this.stopWhenDone) reporter.counters.instructions++;
    let outcome: InstructionOutcome;
    try {
      outcome = this.inline
        ? await refineHere()
        : await startInstructionChild(this.control, this.childContext(), this.rubrics!, item);
    } catch (err) {
      // A legacy instruction workflow itself failed (it catches item failures, so this is rare): the
      // item is failed with its reason rather than lost. Cancellation, and a bug in workflow code,
      // propagate.
      if (!isItemFailure(err)) {
        if (this.stopWhenDone && isCancellation(err))
          reporter.counters.leftInFlight = (reporter.counters.leftInFlight ?? 0) + 1;
        throw err;
      }
      const reason = failureMessage(err);
      outcome = { id: item.id, status: 'failed', iteration: 1, gaps: [], stage: 'refine', reason, usage: {} };
    }
    tally(reporter.counters, outcome);
    if (outcome.status === 'kept') this.keptHere++;
    const failures =
      outcome.status === 'failed'
        ? [{ item: item.id, stage: outcome.stage ?? 'refine', reason: outcome.reason ?? 'unknown' }]
        : [];
    // A kept pair is reported at once, so the run stops the others as soon as it has its size.
    reporter.add(outcome.usage, failures, 1, this.stopWhenDone && outcome.status === 'kept');
  }

  private childContext() {
    const { runId, outDir } = this.input;
    return { runId, outDir, config: this.config, taskQueue: this.queue };
  }

  /** Counts a batch (or everything left) as failed, so that the counts still add up. */
  private failBatches(from: number, to: number, stage: string, err: unknown): void {
    let n = 0;
    for (let b = from; b < to; b++) n += this.planned(b);
    this.reporter.counters.instructions += n;
    this.reporter.counters.failed += n;
    const which = to - from === 1 ? `${this.name} batch ${from + 1}` : this.name;
    this.reporter.add(usageInFailure(err) ?? {}, [{ item: which, stage, reason: failureMessage(err) }], n);
  }

  /** Decoded instructions that will never start (target reached, or cancelled) are counted, not lost. */
  private dropQueued(): void {
    if (!this.stopWhenDone) return;
    const { counters } = this.reporter;
    counters.notStarted = (counters.notStarted ?? 0) + this.ahead.queued.length;
    this.ahead.queued.length = 0;
  }

  /** After the loop: report, then end, or continue-as-new from the next batch (nothing decoded carried). */
  async finish(): Promise<EntryResult> {
    if (this.rubricsFailed) return {};
    if (this.enough()) this.dropQueued();
    await this.reporter.flush();
    const { needed } = this.input;
    if (this.ahead.next < this.batches && !this.enough()) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof generateForEntry>({
        ...this.input,
        nextBatch: this.ahead.next,
        control: this.control.state,
        ...(needed !== undefined ? { needed: needed - this.keptHere } : {}),
      });
    }
    return {};
  }

  /**
   * Cancelled (the run was cancelled): wait for the instructions (cancelled too; a record being
   * saved still finishes) to settle, then report what finished, so the run's counts match its files.
   */
  async cancelled(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      await condition(() => this.control.running === 0 && this.ahead.inFlight === 0);
      this.dropQueued();
      await this.reporter.flush();
    });
  }
}
