/**
 * The CodecLM loop for one pool entry (docs/method.md sections 3-5; Wang et al., arXiv 2404.05875),
 * written once and read top to bottom:
 *
 *   rubrics for the entry -> decode its share -> for each instruction:
 *     (improve with a random action of the entry) -> both answers -> judge both orders
 *     -> keep (gap beyond theta either way) / iterate (too easy) / drop (at the iteration cap)
 *
 * Every step that talks to a model or a file comes in through a port (EntrySteps, InstructionSteps):
 * the workflows pass Temporal activities (src/workflows/entry.ts), bench/baseline.ts passes the same
 * activity functions called in-process, and test/loop.test.ts passes plain functions. The module is
 * deterministic (its only randomness is the run seed's stream per record id) and uses no Temporal
 * API, so it runs inside a workflow and outside one alike.
 *
 * (Inside a workflow the order of commands is part of the history: this code awaits each port call
 * directly, with no wrapper in between, so the steps are scheduled exactly as before it was
 * extracted; test/histories.test.ts replays histories recorded by earlier versions.)
 */
import type { MethodConfig } from '../schemas/config';
import type { DatasetRecord, JudgedIteration, Judgement, Metadata, Rubric, Usage } from '../schemas/records';
import { addUsage, usageInFailure } from '../schemas/records';
import type { Counters, Failure } from '../schemas/run';
import { combineJudgements, keptSource, type JudgeOutput } from '../tasks/judge';
import { failureMessage } from '../util/failure';
import { pickIndex, rngFrom } from '../util/random';
import type { Contrast } from './contrast';

type Scores = ReturnType<typeof combineJudgements>;

/** An entry's metadata and its Self-Rubrics (4 rubrics, one action each). */
export interface EntryRubrics {
  metadata: Metadata;
  rubrics: Rubric[];
}

/** One decoded instruction: its record id (e.g. r1-e00003-i0002) and text. */
export interface Decoded {
  id: string;
  instruction: string;
}

export interface InstructionOutcome {
  id: string;
  status: 'kept' | 'dropped' | 'failed';
  iteration: number;
  source?: 'strong' | 'target';
  /** The gap of every iteration judged, for the histogram. */
  gaps: number[];
  stage?: string;
  reason?: string;
  usage: Usage;
}

export interface Answers {
  strong: string;
  target: string;
}

/** The judge's two verdicts: `strongFirst` has the strong answer as A, `targetFirst` as B. */
export interface Verdicts {
  strongFirst: JudgeOutput;
  targetFirst: JudgeOutput;
}

/** The steps of one instruction's loop. */
export interface InstructionSteps {
  runId: string;
  method: MethodConfig;
  /** Resolves when a new model call may start (paused: waits; calls in flight finish). */
  gate(): Promise<void>;
  /** Self-Rubrics: the strong model rewrites the instruction applying `action`. */
  improve(request: {
    metadata: Metadata;
    instruction: string;
    action: string;
    label: string;
  }): Promise<{ instruction: string; usage: Usage }>;
  /** Contrastive Filtering 1: strong and target answer (usage added to `c.usage`). */
  answerBoth(c: Contrast): Promise<Answers>;
  /** Contrastive Filtering 2: the judge scores both answers twice, in swapped order. */
  judgeBothOrders(c: Contrast, answers: Answers): Promise<Verdicts>;
  /** Saves a kept pair with its judged iterations. */
  saveKept(record: DatasetRecord, judgement: Judgement): Promise<unknown>;
  /** Saves a dropped instruction's judged iterations; undefined when this version keeps none. */
  saveDropped(judgement: Judgement): Promise<unknown> | undefined;
  /** Saves why an instruction failed (a poison item: output that never validates, ...). */
  saveFailed(id: string, failure: Failure): Promise<unknown>;
  /** An error that fails this item only (the run goes on); any other error propagates. */
  isItemFailure(err: unknown): boolean;
}

/** The steps of one pool entry: its rubrics, its decode batches, and how instructions are run. */
export interface EntrySteps extends InstructionSteps {
  /** Self-Rubrics for the entry, written once; undefined when that failed (the step counts it). */
  writeRubrics(): Promise<EntryRubrics | undefined>;
  /** Decode: one batch of the entry's share, zero-shot; `found` gets each instruction to refine. */
  decode(entry: EntryRubrics, batch: number, found: (item: Decoded) => void): Promise<void>;
  /** Runs `decode` batch after batch and `refine` for each instruction found, in its windows. */
  decodeAhead(
    decode: (batch: number, found: (item: Decoded) => void) => Promise<void>,
    refine: (item: Decoded) => Promise<void>,
  ): Promise<void>;
  /** Runs one instruction (`refineHere`) and accounts for its outcome. */
  settle(item: Decoded, refineHere: () => Promise<InstructionOutcome>): Promise<void>;
}

/** One pool entry: its rubrics, then its share decoded and each instruction refined. */
export async function generateEntry(steps: EntrySteps): Promise<void> {
  // Self-Rubrics, first half (section 4): rubrics and actions for the entry's metadata, once.
  const entry = await steps.writeRubrics();
  if (!entry) return; // failed: its share is counted as failed by the step
  // Decode (section 3) the entry's share in batches; each instruction goes through Self-Rubrics
  // iterations and Contrastive Filtering (sections 4-5) as soon as it is decoded.
  await steps.decodeAhead(
    (batch, found) => steps.decode(entry, batch, found),
    (item) => steps.settle(item, () => refine(steps, entry, item)),
  );
}

/** One instruction: Self-Rubrics iterations and Contrastive Filtering until kept or dropped. */
export async function refine(
  steps: InstructionSteps,
  entry: EntryRubrics,
  item: Decoded,
): Promise<InstructionOutcome> {
  const { method } = steps;
  const { metadata, rubrics } = entry;
  const rng = rngFrom(`${method.runSeed}:${item.id}`);
  const t = new Trail(steps.runId, method, metadata, item);
  try {
    // At most maxIterations (4), the basic instruction counting as the first.
    for (; t.iteration <= method.maxIterations; t.iteration++) {
      // Self-Rubrics: from the second iteration on, apply one of the entry's actions at random.
      if (t.iteration > 1) {
        t.stage = 'improve';
        await steps.gate();
        const action = rubrics[pickIndex(rng, rubrics.length)]!.action;
        const label = `improve ${item.id} iteration ${t.iteration}`;
        t.improved(action, await steps.improve({ metadata, instruction: t.instruction, action, label }));
      }

      // Contrastive Filtering 1: both models answer.
      t.stage = 'answer';
      const contrast = t.contrast();
      await steps.gate();
      const answers = await steps.answerBoth(contrast);

      // 2. The judge scores both answers, twice, in swapped order; scores are averaged.
      t.stage = 'judge';
      await steps.gate();
      const verdicts = await steps.judgeBothOrders(contrast, answers);
      const scores = combineJudgements(verdicts.strongFirst, verdicts.targetFirst);

      // 3. Keep when the gap is wide either way; otherwise it is too easy: iterate, or drop at the cap.
      const source = keptSource(scores, method);
      t.judged(answers, verdicts, scores, source);
      if (source) {
        t.stage = 'save';
        await steps.saveKept(t.record(source, answers, scores), t.judgement());
        return t.outcome('kept', source);
      }
    }
    t.stage = 'save';
    const saving = steps.saveDropped(t.judgement());
    if (saving) await saving;
    return t.outcome('dropped');
  } catch (err) {
    if (!steps.isItemFailure(err)) throw err;
    // A poison item (output that never validates, ...) ends as failed with its reason; the run goes on.
    await steps.saveFailed(item.id, t.failed(err));
    return t.outcome('failed');
  }
}

/** What happened to one instruction so far: its text, stage, usage, and every judged iteration. */
class Trail {
  instruction: string;
  iteration = 1;
  /** The step running now, named in a failure. */
  stage = 'improve';
  readonly usage: Usage = {};
  private readonly gaps: number[] = [];
  private readonly actions: string[] = [];
  /** Every judged iteration, for viewer.html (saved once the instruction is decided). */
  private readonly iterations: JudgedIteration[] = [];
  private reason?: string;

  constructor(
    private readonly runId: string,
    private readonly method: MethodConfig,
    private readonly metadata: Metadata,
    private readonly item: Decoded,
  ) {
    this.instruction = item.instruction;
  }

  improved(action: string, result: { instruction: string; usage: Usage }): void {
    addUsage(this.usage, result.usage);
    this.instruction = result.instruction;
    this.actions.push(action);
  }

  contrast(): Contrast {
    const label = `${this.item.id} iteration ${this.iteration}`;
    return { instruction: this.instruction, label, method: this.method, usage: this.usage };
  }

  judged(
    answers: Answers,
    verdicts: Verdicts,
    scores: Scores,
    source: 'strong' | 'target' | undefined,
  ): void {
    this.gaps.push(scores.gap);
    const last = this.iteration === this.method.maxIterations;
    this.iterations.push({
      iteration: this.iteration,
      instruction: this.instruction,
      actions: [...this.actions],
      answers,
      judge: { strongFirst: verdicts.strongFirst, targetFirst: verdicts.targetFirst },
      scores,
      decision: source ? `kept-${source}` : last ? 'dropped' : 'iterated',
    });
  }

  record(source: 'strong' | 'target', answers: Answers, scores: Scores): DatasetRecord {
    return {
      id: this.item.id,
      instruction: this.instruction,
      response: source === 'strong' ? answers.strong : answers.target,
      source,
      metadata: this.metadata,
      iteration: this.iteration,
      scores,
      run_id: this.runId,
      actions: this.actions,
    };
  }

  judgement(): Judgement {
    const { theta, minStrongScore } = this.method;
    const { item, runId, metadata } = this;
    return { id: item.id, run_id: runId, metadata, theta, minStrongScore, iterations: this.iterations };
  }

  failed(err: unknown): Failure {
    addUsage(this.usage, usageInFailure(err)); // the calls the failed attempts made are billed too
    this.reason = failureMessage(err);
    return { item: this.item.id, stage: this.stage, reason: this.reason };
  }

  outcome(status: InstructionOutcome['status'], source?: 'strong' | 'target'): InstructionOutcome {
    const { id } = this.item;
    const { gaps, usage } = this;
    if (status === 'kept') return { id, status, iteration: this.iteration, source, gaps, usage };
    if (status === 'dropped') return { id, status, iteration: this.method.maxIterations, gaps, usage };
    return { id, status, iteration: this.iteration, gaps, stage: this.stage, reason: this.reason, usage };
  }
}

/** Adds one instruction's outcome to the counters (kept/dropped/failed, per iteration, gaps). */
export function tally(c: Counters, o: InstructionOutcome): void {
  if (o.status === 'kept') {
    c.kept++;
    c.keptByIteration[String(o.iteration)] = (c.keptByIteration[String(o.iteration)] ?? 0) + 1;
    if (o.source === 'target') c.keptFromTarget++;
  } else if (o.status === 'dropped') {
    c.dropped++;
    c.droppedAtCap++;
  } else c.failed++;
  for (const [i, gap] of o.gaps.entries()) {
    c.judgedByIteration[String(i + 1)] = (c.judgedByIteration[String(i + 1)] ?? 0) + 1;
    const bucket = String(Math.round(gap));
    c.gapHistogram[bucket] = (c.gapHistogram[bucket] ?? 0) + 1;
  }
}
