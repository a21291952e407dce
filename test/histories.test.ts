import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../src/worker';

/**
 * Histories recorded by the version before INLINE_INSTRUCTIONS (src/workflows/pipeline.ts), when an
 * entry started one refineInstruction child per instruction: a run, an entry and two instruction
 * workflows of a small simulator run. Workers of this version must finish such runs, so the
 * histories have to replay without nondeterminism errors against today's workflow code. (Stored as
 * binary protobuf, as `fetchHistory()` returned them: the SDK's JSON loader trips over two copies of
 * protobufjs in this dependency tree.)
 */
const dir = path.join(__dirname, 'histories', 'pre-inline');

const History = temporal.api.history.v1.History;

function load(file: string): { workflowId: string; history: temporal.api.history.v1.History } {
  const history = History.decode(fs.readFileSync(path.join(dir, file)));
  return { workflowId: file.replace(/\.history\.bin$/, '').replace(/__/g, '/'), history };
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
    files.map(load),
  );
  const replayed: string[] = [];
  for await (const r of results) {
    expect(r.error).toBeUndefined();
    replayed.push(r.workflowId);
  }
  expect(replayed.sort()).toEqual(files.map((f) => load(f).workflowId).sort());
});
