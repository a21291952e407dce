import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { codeclmRun } from '../src/workflows/pipeline';
import { startSimulator } from '../src/sim/server';
import { judgementSchema, type DatasetRecord, type Judgement } from '../src/schemas/records';
import type { ViewerRow } from '../src/viewer/rows';
import { judgementsDir } from '../src/viewer/store';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { expectReplays } from './helpers/replay';

/**
 * A real run (dev server, worker, simulator over HTTP) leaves one judgement per decided instruction,
 * kept or dropped, and viewer.html holds every judged iteration of them. Its history replays.
 */
const examples = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11 });
  w = await startTestWorker('viewer-e2e');
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

test('every judged instruction of a run, kept or dropped, is in viewer.html with its judgements', async () => {
  const outDir = tmpDir('codeclm-viewer-e2e-');
  const runId = `viewer-e2e-${Date.now()}`;
  // theta 4 and two iterations: the simulator's filter both keeps and drops at this size.
  const config = simConfig(sim.url, {
    limits: { size: 30, concurrency: 12 },
    method: { poolSize: 30, theta: 4, maxIterations: 2 },
  });
  const result = await w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [{ runId, seedsFile: examples, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
  });
  const c = result.counters;
  expect(c.kept).toBeGreaterThan(0);
  expect(c.dropped).toBeGreaterThan(0);

  const judgements: Judgement[] = fs
    .readdirSync(judgementsDir(outDir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .map((f) =>
      judgementSchema.parse(JSON.parse(fs.readFileSync(path.join(judgementsDir(outDir), f), 'utf8'))),
    );
  expect(judgements).toHaveLength(c.kept + c.dropped);
  const finals = judgements.map((j) => j.iterations[j.iterations.length - 1]!.decision);
  expect(finals.filter((d) => d === 'dropped')).toHaveLength(c.dropped);
  expect(finals.filter((d) => d.startsWith('kept-'))).toHaveLength(c.kept);
  const judgedIterations = judgements.reduce((n, j) => n + j.iterations.length, 0);
  expect(judgedIterations).toBe(Object.values(c.judgedByIteration).reduce((a, b) => a + b, 0));

  // Each kept record is its judgement's last iteration: same instruction, answer, scores, actions.
  const records = fs
    .readFileSync(path.join(outDir, 'dataset.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DatasetRecord);
  const byId = new Map(judgements.map((j) => [j.id, j]));
  for (const r of records) {
    const last = byId.get(r.id)!.iterations.at(-1)!;
    expect(last.decision).toBe(`kept-${r.source}`);
    expect(last.instruction).toBe(r.instruction);
    expect(last.answers[r.source]).toBe(r.response);
    expect(last.scores).toEqual(r.scores);
    expect(last.actions).toEqual(r.actions);
    expect(last.judge.strongFirst.score_a + last.judge.targetFirst.score_b).toBeCloseTo(
      2 * r.scores.strong,
      6,
    );
  }
  for (const j of judgements) {
    expect(j.theta).toBe(4);
    j.iterations.forEach((it, k) => {
      expect(it.iteration).toBe(k + 1);
      expect(it.actions).toHaveLength(k);
      if (k < j.iterations.length - 1) expect(it.decision).toBe('iterated');
    });
  }

  const html = fs.readFileSync(path.join(outDir, 'viewer.html'), 'utf8');
  const rows = [...html.matchAll(/<script type="application\/json" class="rows">(.*?)<\/script>/gs)].flatMap(
    (m) => JSON.parse(m[1]!) as ViewerRow[],
  );
  expect(rows).toHaveLength(judgedIterations);
  expect(html).toContain(`codeclm viewer: run ${runId}`);

  // The run's histories (with the judgement-records patch) replay on this code.
  const ids = [runId];
  const query = `WorkflowId STARTS_WITH "${runId}/" AND WorkflowType = "generateForEntry"`;
  for await (const wf of w.client.workflow.list({ query }) as AsyncIterable<WorkflowExecutionDescription>) {
    ids.push(wf.workflowId);
    if (ids.length > 8) break;
  }
  await expectReplays(w.client, ids, 'viewer');
});
