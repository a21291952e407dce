import fs from 'node:fs';
import path from 'node:path';
import { createSinkActivities } from '../src/activities/sink';
import { emptyCounters, type RunProgress } from '../src/schemas/run';
import type { DatasetRecord, Judgement } from '../src/schemas/records';
import { rowsOf, type ViewerRow } from '../src/viewer/rows';
import { judgementFile, judgementsDir } from '../src/viewer/store';
import { ROWS_PER_BLOCK, writeViewer } from '../src/viewer/write';
import { fixtureJudgements } from './viewer.fixture';
import { tmpDir } from './helpers/env';

/**
 * viewer.html is built from the judgement files a run saves (one per instruction, kept or not):
 * these tests read the rows back out of the page the way its script does.
 */
function embeddedRows(html: string): ViewerRow[] {
  const blocks = [...html.matchAll(/<script type="application\/json" class="rows">(.*?)<\/script>/gs)];
  return blocks.flatMap((m) => JSON.parse(m[1]!) as ViewerRow[]);
}

function recordOf(j: Judgement): DatasetRecord {
  const last = j.iterations[j.iterations.length - 1]!;
  const source = last.decision === 'kept-target' ? 'target' : 'strong';
  return {
    id: j.id,
    instruction: last.instruction,
    response: last.answers[source],
    source,
    metadata: j.metadata,
    iteration: last.iteration,
    scores: last.scores,
    run_id: j.run_id,
    actions: last.actions,
  };
}

test('every judged iteration of every instruction, kept or dropped, becomes one row of the page', async () => {
  const out = tmpDir('codeclm-viewer-');
  const judgements = fixtureJudgements(1200);
  for (const j of judgements) {
    fs.mkdirSync(path.dirname(judgementFile(out, j.id)), { recursive: true });
    fs.writeFileSync(judgementFile(out, j.id), JSON.stringify(j));
  }
  const { file, facets } = await writeViewer(out, { runId: 'unit' });
  const html = fs.readFileSync(file, 'utf8');
  const rows = embeddedRows(html);
  const expected = [...judgements].sort((a, b) => (a.id < b.id ? -1 : 1)).flatMap(rowsOf);
  expect(rows).toEqual(expected);
  expect(rows.length).toBeGreaterThan(1200);
  // Chunked, so the page can parse a block at a time.
  expect(html.match(/class="rows"/g)!.length).toBe(Math.ceil(rows.length / ROWS_PER_BLOCK));
  expect(facets.instructions).toBe(1200);
  expect(facets.rows).toBe(rows.length);
  const dropped = rows.filter((r) => r.d === 'dropped').length;
  expect(dropped).toBeGreaterThan(0);
  expect(facets.decisions.dropped).toBe(dropped);
  expect(html).toContain('<title>codeclm viewer: run unit</title>');
  // Self-contained: nothing is fetched.
  expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
});

test('text that looks like markup stays text: an answer cannot close the data block or inject HTML', async () => {
  const out = tmpDir('codeclm-viewer-');
  const [j] = fixtureJudgements(1);
  const nasty = 'Use </script><script>alert(1)</script> and <!-- a comment';
  j!.iterations[0]!.answers.strong = nasty;
  j!.iterations[0]!.instruction = '<b>bold?</b>';
  fs.mkdirSync(path.dirname(judgementFile(out, j!.id)), { recursive: true });
  fs.writeFileSync(judgementFile(out, j!.id), JSON.stringify(j));
  const html = fs.readFileSync((await writeViewer(out, { runId: 'x' })).file, 'utf8');
  expect(html).not.toContain('</script><script>alert(1)');
  expect(embeddedRows(html)[0]!.as).toBe(nasty);
  expect(embeddedRows(html)[0]!.q).toBe('<b>bold?</b>');
});

test('a judgement file that is not one names the file', async () => {
  const out = tmpDir('codeclm-viewer-');
  const bad = judgementFile(out, 'r1-e00000-i0000');
  fs.mkdirSync(path.dirname(bad), { recursive: true });
  fs.writeFileSync(bad, JSON.stringify({ id: 'r1-e00000-i0000', iterations: [] }));
  await expect(writeViewer(out, { runId: 'x' })).rejects.toThrow(bad);
  expect(fs.existsSync(path.join(out, 'viewer.html'))).toBe(false);
});

test('the sink saves judgements idempotently (kept with their record, dropped alone) and finalize builds viewer.html', async () => {
  const out = tmpDir('codeclm-viewer-sink-');
  const sink = createSinkActivities();
  const judgements = fixtureJudgements(60, 'sink');
  for (const j of judgements) {
    const last = j.iterations[j.iterations.length - 1]!.decision;
    // Each write twice, as a retried activity would.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (last === 'dropped') await sink.saveJudgement({ outDir: out, judgement: j });
      else await sink.saveRecord({ outDir: out, record: recordOf(j), judgement: j });
    }
  }
  const files = fs
    .readdirSync(judgementsDir(out), { recursive: true })
    .filter((f) => String(f).endsWith('.json'));
  expect(files).toHaveLength(60);

  const progress: RunProgress = {
    runId: 'sink-run',
    phase: 'finalize',
    state: 'running',
    outDir: out,
    size: 60,
    counters: emptyCounters(),
    usage: {},
    failures: [],
    startedAt: Date.now(),
  };
  const { kept } = await sink.finalizeRun({ progress });
  const html = fs.readFileSync(path.join(out, 'viewer.html'), 'utf8');
  const rows = embeddedRows(html);
  expect(new Set(rows.map((r) => r.id)).size).toBe(60);
  expect(rows.filter((r) => r.d.startsWith('kept-')).length).toBe(kept);
  expect(rows.some((r) => r.d === 'dropped')).toBe(true);
  expect(html).toContain('codeclm viewer: run sink-run');
});
