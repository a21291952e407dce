import fs from 'node:fs';
import path from 'node:path';
import { codeclmRun } from '../src/workflows/pipeline';
import { startSimulator } from '../src/sim/server';
import type { DatasetRecord } from '../src/schemas/records';
import type { Report } from '../src/report/build';
import type { Removal } from '../src/quality/settings';
import { storedTexts } from '../src/quality/store';
import { collect } from '../src/store/store';
import { normalise, words } from '../src/quality/text';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';

/**
 * Decontamination end to end: an instruction the simulator decodes is planted in a benchmark file
 * (Vicuna's format); a run with that file given is the same run without it, minus that instruction,
 * which is removed right after decode and reported with its benchmark item.
 */
const seedsFile = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 5 });
  w = await startTestWorker('decontam-e2e');
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

const config = () =>
  simConfig(sim.url, {
    limits: { size: 12, concurrency: 8, topUpRounds: 0 },
    method: { poolSize: 4, decodeBatch: 6, dedupe: 'exact' },
  });

async function run(name: string, decontaminate?: string[]): Promise<string> {
  const runId = `decontam-${name}-${Date.now()}`;
  const outDir = tmpDir(`codeclm-decontam-${name}-`);
  await w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [
      {
        runId,
        seedsFile,
        outDir,
        skipInvalid: false,
        config: config(),
        taskQueue: w.taskQueue,
        decontaminate,
      },
    ],
  });
  return outDir;
}

test('a planted benchmark item is removed after decode and reported with its file, id and n-gram', async () => {
  const clean = await run('clean');
  // An instruction this seed decodes, long enough for a 13-gram.
  const decoded = (await collect(storedTexts(clean))).find((t) => words(t.text).length >= 15)!;
  expect(decoded).toBeDefined();
  const dir = tmpDir('codeclm-bench-');
  const vicuna = path.join(dir, 'bench-vicuna.jsonl');
  fs.writeFileSync(
    vicuna,
    [
      {
        question_id: 41,
        category: 'generic',
        turns: ['How can I improve my time management skills at work?'],
      },
      { question_id: 42, category: 'planted', turns: [`Context first. ${decoded.text} Answer briefly.`] },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  const koala = path.join(__dirname, '..', 'examples', 'formats', 'koala.jsonl');

  const out = await run('planted', [vicuna, koala]);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
  expect(report.counts.contaminatedRemoved).toBeGreaterThanOrEqual(1);
  const c = report.counts;
  expect(c.kept + c.dropped + c.failed + c.duplicatesRemoved + (c.contaminatedRemoved ?? 0)).toBe(
    c.instructions,
  );

  const removed = fs
    .readFileSync(path.join(out, 'removed.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Removal);
  const hit = removed.find((r) => r.id === decoded.id)!;
  expect(hit).toEqual(
    expect.objectContaining({
      reason: 'contaminated',
      text: decoded.text,
      benchmark: expect.objectContaining({ file: 'bench-vicuna.jsonl', id: '42' }),
    }),
  );
  expect(normalise(decoded.text)).toContain(hit.benchmark!.ngram);
  // It never reached answers and judging: no record, no judged file, and the other instructions went on.
  const dataset = fs
    .readFileSync(path.join(out, 'dataset.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DatasetRecord);
  expect(dataset.some((d) => d.id === decoded.id)).toBe(false);
  expect((await collect(storedTexts(out))).some((t) => t.id === decoded.id)).toBe(false);
  expect(dataset.length).toBeGreaterThan(0);
  const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  expect(md).toContain('with bench-vicuna.jsonl item 42');
  expect(md).toMatch(/Decontaminated against: bench-vicuna\.jsonl \(2 items\), koala\.jsonl \(\d+ items\)/);
  expect(fs.readFileSync(path.join(out, 'README.md'), 'utf8')).toMatch(
    /n-gram with a benchmark item \([1-9]\d*\)/,
  );
});
