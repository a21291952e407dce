import { ApplicationFailure } from '@temporalio/common';
import { configSchema } from '../src/schemas/config';
import type { DatasetRecord, Judgement } from '../src/schemas/records';
import { emptyCounters, type Failure } from '../src/schemas/run';
import {
  generateEntry,
  refine,
  tally,
  type Decoded,
  type EntryRubrics,
  type EntrySteps,
  type InstructionSteps,
} from '../src/workflows/loop';

/**
 * The CodecLM loop (src/workflows/loop.ts) with plain functions as its steps: no Temporal, no
 * model, milliseconds. The judge is scripted per iteration: `gaps[i]` is the strong-minus-target gap
 * it gives an instruction improved i times (paper defaults: theta 3, at most 4 iterations).
 */
const method = configSchema.parse({}).method;
const entry: EntryRubrics = {
  metadata: { use_case: 'trip planning', skills: ['budgeting'] },
  rubrics: ['a budget', 'a deadline', 'two travellers', 'a visa'].map((r) => ({
    rubric: `needs ${r}`,
    action: `add ${r}`,
  })),
};

interface Calls {
  improved: string[];
  kept: { record: DatasetRecord; judgement: Judgement }[];
  dropped: Judgement[];
  failed: Failure[];
  gates: number;
}

/** Plain steps; `gaps[i]` scores an instruction with i improvements; `fail` throws at one step. */
function plainSteps(
  gaps: number[],
  opts: { fail?: 'improve' | 'judge'; error?: unknown; overrides?: Partial<InstructionSteps> } = {},
): { steps: InstructionSteps; calls: Calls } {
  const calls: Calls = { improved: [], kept: [], dropped: [], failed: [], gates: 0 };
  const level = (instruction: string) => instruction.split(' +').length - 1;
  const usage = (stage: string) => ({
    [`${stage}/strong`]: { calls: 1, promptTokens: 10, completionTokens: 5 },
  });
  const fail = () => {
    throw opts.error ?? ApplicationFailure.nonRetryable('never valid JSON', 'LlmInvalidOutput');
  };
  const steps: InstructionSteps = {
    runId: 'run-1',
    method,
    gate: async () => {
      calls.gates++;
    },
    improve: async (r) => {
      if (opts.fail === 'improve') fail();
      calls.improved.push(r.action);
      return { instruction: `${r.instruction} +${r.action}`, usage: usage('improve') };
    },
    answerBoth: async (c) => ({ strong: `strong: ${c.instruction}`, target: `target: ${c.instruction}` }),
    judgeBothOrders: async (c) => {
      if (opts.fail === 'judge') fail();
      const gap = gaps[level(c.instruction)] ?? 0;
      // Both orders agree: strong scores 5 + gap/2, target 5 - gap/2.
      const s = 5 + gap / 2;
      const t = 5 - gap / 2;
      return { strongFirst: { score_a: s, score_b: t }, targetFirst: { score_a: t, score_b: s } };
    },
    saveKept: async (record, judgement) => calls.kept.push({ record, judgement }),
    saveDropped: (judgement) => Promise.resolve(calls.dropped.push(judgement)),
    saveFailed: async (_id, failure) => calls.failed.push(failure),
    isItemFailure: (err) => err instanceof ApplicationFailure,
    ...opts.overrides,
  };
  return { steps, calls };
}

const item: Decoded = { id: 'r1-e00000-i0000', instruction: 'Plan a weekend in Lisbon.' };

test('keep at once: a gap beyond theta at the first iteration keeps the basic instruction', async () => {
  const { steps, calls } = plainSteps([4]);
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'kept', source: 'strong', iteration: 1, gaps: [4] });
  expect(calls.improved).toEqual([]);
  expect(calls.kept).toHaveLength(1);
  const { record, judgement } = calls.kept[0]!;
  expect(record).toMatchObject({ id: item.id, instruction: item.instruction, source: 'strong', actions: [] });
  expect(record.response).toBe(`strong: ${item.instruction}`);
  expect(judgement.iterations.map((i) => i.decision)).toEqual(['kept-strong']);
});

test('keep the target answer when the target wins by more than theta (regularisation)', async () => {
  const { steps, calls } = plainSteps([-3.5]);
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'kept', source: 'target', iteration: 1 });
  expect(calls.kept[0]!.record.response).toBe(`target: ${item.instruction}`);
});

test('iterate: too easy twice, then improved with an action of the entry and kept', async () => {
  const { steps, calls } = plainSteps([1, 3, 5]);
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'kept', iteration: 3, gaps: [1, 3, 5] });
  expect(calls.improved).toHaveLength(2);
  const actions = entry.rubrics.map((r) => r.action);
  for (const a of calls.improved) expect(actions).toContain(a);
  const { record, judgement } = calls.kept[0]!;
  expect(record.actions).toEqual(calls.improved);
  expect(record.instruction).toBe(`${item.instruction} +${calls.improved[0]} +${calls.improved[1]}`);
  expect(judgement.iterations.map((i) => i.decision)).toEqual(['iterated', 'iterated', 'kept-strong']);
  // A gate before every model step: 3 answers, 3 judgements, 2 improvements.
  expect(calls.gates).toBe(8);
});

test('drop at the iteration cap: never wide enough, 4 iterations judged, judgements saved', async () => {
  const { steps, calls } = plainSteps([0, 1, -2, 3]);
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'dropped', iteration: 4, gaps: [0, 1, -2, 3] });
  expect(calls.improved).toHaveLength(3);
  expect(calls.kept).toEqual([]);
  expect(calls.dropped).toHaveLength(1);
  expect(calls.dropped[0]!.iterations.map((i) => i.decision)).toEqual([
    'iterated',
    'iterated',
    'iterated',
    'dropped',
  ]);
});

test('max iterations is the method setting: with 2, the second too-easy judgement drops', async () => {
  const { steps, calls } = plainSteps([0, 0, 9], {
    overrides: { method: { ...method, maxIterations: 2 } },
  });
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'dropped', iteration: 2, gaps: [0, 0] });
  expect(calls.improved).toHaveLength(1);
});

test('a version that keeps no judgements of dropped instructions: nothing saved, still dropped', async () => {
  const { steps } = plainSteps([0, 0, 0, 0], { overrides: { saveDropped: () => undefined } });
  expect((await refine(steps, entry, item)).status).toBe('dropped');
});

test('the actions drawn come from the run seed and the record id: same seed, same actions', async () => {
  const draw = async (runSeed: number, id: string) => {
    const { steps, calls } = plainSteps([0, 0, 0, 0], { overrides: { method: { ...method, runSeed } } });
    await refine(steps, entry, { ...item, id });
    return calls.improved;
  };
  expect(await draw(42, item.id)).toEqual(await draw(42, item.id));
  const others = await Promise.all([1, 2, 3, 4, 5].map((seed) => draw(seed, item.id)));
  expect(others.some((a) => a.join() !== others[0]!.join())).toBe(true);
});

test('an item failure fails the instruction with its stage and reason; the loop goes on', async () => {
  const { steps, calls } = plainSteps([0, 9], { fail: 'improve' });
  const outcome = await refine(steps, entry, item);
  expect(outcome).toMatchObject({ status: 'failed', stage: 'improve', iteration: 2, gaps: [0] });
  expect(outcome.reason).toMatch(/LlmInvalidOutput: never valid JSON/);
  expect(calls.failed).toEqual([{ item: item.id, stage: 'improve', reason: outcome.reason }]);
});

test('any other error (a bug, a cancellation) propagates instead of failing the item', async () => {
  const { steps, calls } = plainSteps([4], { fail: 'judge', error: new TypeError('bug') });
  await expect(refine(steps, entry, item)).rejects.toThrow('bug');
  expect(calls.failed).toEqual([]);
});

test('tally: kept, dropped and failed outcomes counted with iterations and gap buckets', () => {
  const c = emptyCounters();
  tally(c, { id: 'a', status: 'kept', iteration: 2, source: 'target', gaps: [1, -4], usage: {} });
  tally(c, { id: 'b', status: 'dropped', iteration: 4, gaps: [0, 0, 1, 2], usage: {} });
  tally(c, { id: 'c', status: 'failed', iteration: 1, gaps: [], usage: {} });
  expect(c).toMatchObject({ kept: 1, keptFromTarget: 1, dropped: 1, droppedAtCap: 1, failed: 1 });
  expect(c.keptByIteration).toEqual({ '2': 1 });
  expect(c.judgedByIteration).toEqual({ '1': 2, '2': 2, '3': 1, '4': 1 });
  expect(c.gapHistogram).toEqual({ '1': 2, '-4': 1, '0': 2, '2': 1 });
});

/** An entry's steps around plainSteps: decode yields `perBatch` instructions per batch. */
function entrySteps(batches: number, perBatch: number, rubricsFail = false) {
  const { steps, calls } = plainSteps([4]);
  const decoded: number[] = [];
  const settled: string[] = [];
  const full: EntrySteps = {
    ...steps,
    writeRubrics: async () => (rubricsFail ? undefined : entry),
    decode: async (e, batch, found) => {
      expect(e).toBe(entry);
      decoded.push(batch);
      for (let j = 0; j < perBatch; j++) found({ id: `b${batch}-i${j}`, instruction: `task ${batch}.${j}` });
    },
    decodeAhead: async (decode, run) => {
      for (let b = 0; b < batches; b++) {
        const found: Decoded[] = [];
        await decode(b, (d) => found.push(d));
        await Promise.all(found.map(run));
      }
    },
    settle: async (it, refineHere) => {
      const outcome = await refineHere();
      expect(outcome.id).toBe(it.id);
      settled.push(`${it.id}:${outcome.status}`);
    },
  };
  return { steps: full, calls, decoded, settled };
}

test('an entry: rubrics once, its share decoded batch by batch, every instruction refined and settled', async () => {
  const e = entrySteps(3, 2);
  await generateEntry(e.steps);
  expect(e.decoded).toEqual([0, 1, 2]);
  expect(e.settled.sort()).toEqual(
    ['b0-i0', 'b0-i1', 'b1-i0', 'b1-i1', 'b2-i0', 'b2-i1'].map((id) => `${id}:kept`).sort(),
  );
  expect(e.calls.kept.map((k) => k.record.metadata)).toEqual(Array(6).fill(entry.metadata));
});

test('an entry whose rubrics failed decodes nothing', async () => {
  const e = entrySteps(3, 2, true);
  await generateEntry(e.steps);
  expect(e.decoded).toEqual([]);
  expect(e.settled).toEqual([]);
});
