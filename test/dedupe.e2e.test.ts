import fs from 'node:fs';
import path from 'node:path';
import { codeclmRun } from '../src/workflows/pipeline';
import { codeclmScheduledRun } from '../src/workflows/scheduled';
import { startSimulator } from '../src/sim/server';
import type { DatasetRecord } from '../src/schemas/records';
import type { Report } from '../src/report/build';
import type { RunResult } from '../src/schemas/run';
import type { ResolvedConfig } from '../src/schemas/config';
import type { Removal } from '../src/quality/settings';
import { jaccard, normalise, shingles } from '../src/quality/text';
import { storedTexts } from '../src/quality/store';
import { collect } from '../src/store/store';
import { runStatus } from '../src/cli/control';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';

/**
 * Duplicate removal end to end: a real Temporal dev server, a real worker, and the simulator asked to
 * repeat itself (word for word and in other words) when it decodes.
 */
const seedsFile = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11, repeats: { exact: 0.15, paraphrase: 0.35 } });
  w = await startTestWorker('dedupe-e2e');
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
});

function config(dedupe: ResolvedConfig['method']['dedupe']): ResolvedConfig {
  return simConfig(sim.url, {
    limits: { size: 16, concurrency: 12, topUpRounds: 1 },
    method: { poolSize: 4, decodeBatch: 10, dedupe },
  });
}

async function run(
  name: string,
  cfg: ResolvedConfig,
): Promise<{ runId: string; outDir: string; result: RunResult }> {
  const runId = `dedupe-${name}-${Date.now()}`;
  const outDir = tmpDir(`codeclm-dedupe-${name}-`);
  const result = await w.client.workflow.execute(codeclmRun, {
    workflowId: runId,
    taskQueue: w.taskQueue,
    args: [{ runId, seedsFile, outDir, skipInvalid: false, config: cfg, taskQueue: w.taskQueue }],
  });
  return { runId, outDir, result };
}

function report(outDir: string): Report {
  return JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Report;
}

function lines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/** kept + dropped + failed + removed = instructions (and nothing left in flight in a completed run). */
function expectCountsAddUp(r: Report): void {
  const c = r.counts;
  const removed = c.duplicatesRemoved + (c.nearDuplicatesRemoved ?? 0) + (c.contaminatedRemoved ?? 0);
  expect(c.kept + c.dropped + c.failed + removed + (c.leftInFlight ?? 0)).toBe(c.instructions);
  expect(r.removed?.total).toBe(removed);
}

test('near mode: paraphrases at Jaccard >= threshold and exact copies are removed, and reported', async () => {
  const threshold = 0.7;
  const { runId, outDir, result } = await run('near', config({ mode: 'near', threshold, shingle: 3 }));
  const r = report(outDir);
  expectCountsAddUp(r);
  expect(r.counts.duplicatesRemoved).toBeGreaterThan(0);
  expect(r.counts.nearDuplicatesRemoved).toBeGreaterThan(0);
  expect(result.counters.nearDuplicatesRemoved).toBe(r.counts.nearDuplicatesRemoved);
  // `codeclm status` shows them too.
  const status = await runStatus(w.client.workflow.getHandle(runId));
  expect(status.counters).toEqual(
    expect.objectContaining({
      duplicates_removed: r.counts.duplicatesRemoved,
      near_duplicates_removed: r.counts.nearDuplicatesRemoved,
    }),
  );

  // Every removal names what it repeats; near ones at or above the threshold.
  const removed = lines<Removal>(path.join(outDir, 'removed.jsonl'));
  expect(removed).toHaveLength(r.removed!.total);
  const survivors = await collect(storedTexts(outDir));
  const byId = new Map(survivors.map((s) => [s.id, s.text]));
  for (const x of removed) {
    expect(byId.has(x.of!)).toBe(true);
    if (x.reason === 'exact-duplicate') expect(normalise(x.text)).toBe(normalise(byId.get(x.of!)!));
    else {
      expect(x.reason).toBe('near-duplicate');
      expect(x.similarity).toBeGreaterThanOrEqual(threshold);
      expect(jaccard(shingles(x.text, 3), shingles(byId.get(x.of!)!, 3))).toBeCloseTo(x.similarity!, 2);
    }
  }
  // No two instructions that went on to answers and judging are near duplicates of each other.
  for (let i = 0; i < survivors.length; i++)
    for (let j = i + 1; j < survivors.length; j++)
      expect(jaccard(shingles(survivors[i]!.text, 3), shingles(survivors[j]!.text, 3))).toBeLessThan(
        threshold,
      );
  // The report says why, with examples.
  const md = fs.readFileSync(path.join(outDir, 'report.md'), 'utf8');
  expect(md).toContain('## Removed after decode');
  expect(md).toMatch(/near duplicate of r\d-e\d{5}-i\d{4} \(Jaccard 0\.\d\d\)/);
  expect(r.removed!.examples.some((e) => e.reason === 'exact-duplicate')).toBe(true);
  const html = fs.readFileSync(path.join(outDir, 'report.html'), 'utf8');
  expect(html).toContain('<h2>Removed after decode</h2>');
  expect(html).toMatch(/near duplicate of r\d-e\d{5}-i\d{4} \(Jaccard 0\.\d\d\)/);
});

test('exact mode removes the word-for-word copies only; the paraphrases go on', async () => {
  const { outDir } = await run('exact', config('exact'));
  const r = report(outDir);
  expectCountsAddUp(r);
  expect(r.counts.duplicatesRemoved).toBeGreaterThan(0);
  expect(r.counts.nearDuplicatesRemoved ?? 0).toBe(0);
  const survivors = await collect(storedTexts(outDir));
  expect(new Set(survivors.map((s) => normalise(s.text))).size).toBe(survivors.length);
  // Paraphrases survive exact mode: some pair of survivors is at least 0.7 similar.
  let close = 0;
  for (let i = 0; i < survivors.length; i++)
    for (let j = i + 1; j < survivors.length; j++)
      if (jaccard(shingles(survivors[i]!.text, 3), shingles(survivors[j]!.text, 3)) >= 0.7) close++;
  expect(close).toBeGreaterThan(0);
});

test('a refresh whose seeds did not change adds no pair the previous version had', async () => {
  const scheduleOut = tmpDir('codeclm-dedupe-schedule-');
  const cfg = config({ mode: 'near', threshold: 0.8, shingle: 3 });
  const refresh = (n: number) =>
    w.client.workflow.execute(codeclmScheduledRun, {
      workflowId: `dedupe-schedule-${Date.now()}-${n}`,
      taskQueue: w.taskQueue,
      args: [
        {
          scheduleId: 'dedupe-schedule',
          outDir: scheduleOut,
          seedsFile,
          skipInvalid: false,
          config: cfg,
          taskQueue: w.taskQueue,
        },
      ],
    });
  const v1 = await refresh(1);
  const v2 = await refresh(2);
  expect(v2.version > v1.version).toBe(true);
  const dataset = (v: string) =>
    lines<DatasetRecord>(path.join(scheduleOut, 'versions', v, 'dataset.jsonl')).map((d) =>
      normalise(d.instruction),
    );
  const first = new Set(dataset(v1.version));
  const second = dataset(v2.version);
  expect(first.size).toBeGreaterThan(0);
  expect(second.filter((t) => first.has(t))).toEqual([]);
  // The refresh decoded what the first version had decoded and removed it as a repeat of that version.
  const removed = lines<Removal>(path.join(scheduleOut, 'versions', v2.version, 'removed.jsonl'));
  expect(removed.filter((x) => x.of?.startsWith(`${v1.version}/`)).length).toBeGreaterThan(0);
});
