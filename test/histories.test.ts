import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../src/worker';

/**
 * Histories recorded by the version before INLINE_INSTRUCTIONS (src/workflows/patches.ts), when an
 * entry started one refineInstruction child per instruction: a run, an entry and two instruction
 * workflows of a small simulator run. Workers of this version must finish such runs, so the
 * histories have to replay without nondeterminism errors against today's workflow code. (Stored as
 * binary protobuf, as `fetchHistory()` returned them: the SDK's JSON loader trips over two copies of
 * protobufjs in this dependency tree.)
 */
const root = path.join(__dirname, 'histories');
const dir = path.join(root, 'pre-inline');

const History = temporal.api.history.v1.History;

/** `<workflow id with / as __>[@<run id>].history.bin` */
function load(file: string, from = dir): { workflowId: string; history: temporal.api.history.v1.History } {
  const history = History.decode(fs.readFileSync(path.join(from, file)));
  return { workflowId: file.replace(/(@[^@]*)?\.history\.bin$/, '').replace(/__/g, '/'), history };
}

test('the recorded entry history is the old shape: one refineInstruction child per instruction', () => {
  const entry = load('pre-inline__r1-e00001.history.bin').history;
  const children = (entry.events ?? []).flatMap(
    (e) => e.startChildWorkflowExecutionInitiatedEventAttributes ?? [],
  );
  expect(children.length).toBeGreaterThan(0);
  expect(children.every((c) => c.workflowType?.name === 'refineInstruction')).toBe(true);
});

test('runs, entries and instruction workflows from before inlining replay on this version', async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.history.bin'));
  expect(files.length).toBe(4);
  const results = Worker.runReplayHistories(
    { workflowsPath: workflowsPath(), replayName: 'pre-inline' },
    files.map((f) => load(f)),
  );
  const replayed: string[] = [];
  for await (const r of results) {
    expect(r.error).toBeUndefined();
    replayed.push(r.workflowId);
  }
  expect(replayed.sort()).toEqual(files.map((f) => load(f).workflowId).sort());
});

/**
 * Histories recorded by later versions with test/histories/record.ts (one directory per version,
 * every workflow type: run segments continued-as-new, encode, entries, the legacy instruction
 * workflow, the scheduled run, evaluations), each replayed against today's workflow code.
 */
const recorded = fs
  .readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'pre-inline')
  .map((d) => d.name);

test.each(recorded)('histories recorded by version %s replay on this version', async (version) => {
  const from = path.join(root, version);
  const files = fs.readdirSync(from).filter((f) => f.endsWith('.history.bin'));
  expect(files.length).toBeGreaterThan(0);
  const types = new Set<string>();
  let replayed = 0;
  for await (const r of Worker.runReplayHistories(
    { workflowsPath: workflowsPath(), replayName: version },
    files.map((f) => load(f, from)),
  )) {
    expect(r.error).toBeUndefined();
    replayed++;
  }
  for (const f of files) {
    const started = load(f, from).history.events?.[0]?.workflowExecutionStartedEventAttributes;
    if (started?.workflowType?.name) types.add(started.workflowType.name);
  }
  expect(replayed).toBe(files.length);
  expect(types.size).toBeGreaterThan(0);
});

/** The recorded histories of batcher workflows of one version (a directory of test/histories). */
function batcherHistories(version: string) {
  const from = path.join(root, version);
  return fs
    .readdirSync(from)
    .filter((f) => f.endsWith('.history.bin'))
    .map((f) => load(f, from).history)
    .filter(
      (h) => h.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name === 'codeclmBatcher',
    );
}

test('a batcher history (batch mode) is among those replayed: batches created, polled again, ended with its run', () => {
  const batchers = recorded.flatMap(batcherHistories);
  expect(batchers.length).toBeGreaterThan(0);
  for (const h of batchers) {
    const activities = (h.events ?? []).flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    const count = (name: string) => activities.filter((a) => a === name).length;
    expect(count('batchSubmit')).toBeGreaterThan(1);
    // More polls than batches: some were polled again after a back-off timer.
    expect(count('batchPoll')).toBeGreaterThan(count('batchSubmit'));
    expect(h.events?.at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
  }
});

/** Signal names a recorded batcher history received. */
function batcherSignals(version: string): string[] {
  return batcherHistories(version).flatMap((h) =>
    (h.events ?? []).flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []),
  );
}

test('batchers of both shapes replay: lines inline (batch-mode) and references into the spool (batch-spool)', () => {
  // Before the spool (src/workflows/legacy/batcher.ts): every request's line came in a signal.
  expect(new Set(batcherSignals('batch-mode'))).toEqual(new Set(['batchSubmit']));
  // Since: only references (part, ids, sizes); the lines are in the spool.
  expect(new Set(batcherSignals('batch-spool'))).toEqual(new Set(['batchSpooled']));
});
