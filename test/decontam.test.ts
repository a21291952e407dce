import fs from 'node:fs';
import path from 'node:path';
import { buildBenchmarkIndex } from '../src/quality/benchmarks';
import { contamination, screenBatch } from '../src/quality/screen';
import { createQualityActivities } from '../src/activities/quality';
import { methodSchema } from '../src/schemas/config';
import { parseCommand } from '../src/cli/command';
import { benchmarkFiles, runCommand } from '../src/cli/run';
import { scheduleCreateCommand } from '../src/cli/schedule';
import { tmpDir } from './helpers/env';

/**
 * Decontamination (src/quality/benchmarks.ts): benchmark files in the formats of the paper's four
 * evaluation sets, read with the seed loaders, indexed by word n-grams; an instruction sharing one is
 * removed with the benchmark item named.
 */
const formats = path.join(__dirname, '..', 'examples', 'formats');
const vicuna = path.join(formats, 'vicuna.jsonl');
const koala = path.join(formats, 'koala.jsonl');
const selfInstruct = path.join(formats, 'self-instruct.jsonl');

/** WizardLM's test set shape: {"idx", "Skill", "Difficulty", "Instruction"}. */
function wizardFile(dir: string): string {
  const file = path.join(dir, 'wizardlm_testset.jsonl');
  const rows = [
    {
      idx: 11,
      Skill: 'Code Generation',
      Difficulty: 6,
      Instruction:
        'Write a Python function that merges two sorted lists into one sorted list without using the built-in sort, and explain its running time.',
    },
    { idx: 12, Skill: 'Math', Difficulty: 3, Instruction: 'What is 7 times 8?' },
  ];
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

const item = (text: string, id = 'r1-e00000-i0000') => ({ id, text });

describe('benchmark n-gram index', () => {
  const dir = tmpDir('codeclm-decontam-');
  const wizard = wizardFile(dir);
  let manifest: Awaited<ReturnType<typeof buildBenchmarkIndex>>;
  beforeAll(async () => {
    manifest = await buildBenchmarkIndex(dir, [vicuna, koala, selfInstruct, wizard], 13);
  });

  test('the four evaluation-set formats load as they are', () => {
    expect(manifest.files.map((f) => path.basename(f.file))).toEqual([
      'vicuna.jsonl',
      'koala.jsonl',
      'self-instruct.jsonl',
      'wizardlm_testset.jsonl',
    ]);
    for (const f of manifest.files) expect(f.items).toBeGreaterThan(0);
    // "What is 7 times 8?" is too short to match on its own.
    expect(manifest.files[3]).toEqual(expect.objectContaining({ items: 1, tooShort: 1 }));
  });

  test('an instruction with a 13-word run of a benchmark item is contaminated, with the item named', async () => {
    const planted =
      'For my class: write a Python function that merges two sorted lists into one sorted list without using the built-in sort, please.';
    const r = await contamination(dir, item(planted));
    expect(r).toEqual(
      expect.objectContaining({
        reason: 'contaminated',
        benchmark: expect.objectContaining({ file: 'wizardlm_testset.jsonl', id: '11' }),
      }),
    );
    expect(r!.benchmark!.ngram.split(' ')).toHaveLength(13);
    expect(planted.toLowerCase()).toContain(r!.benchmark!.ngram.split(' ').slice(0, 5).join(' '));
  });

  test('a Vicuna item copied in another case and punctuation is found', async () => {
    const first = JSON.parse(fs.readFileSync(vicuna, 'utf8').split('\n')[0]!) as { turns: string[] };
    const r = await contamination(dir, item(first.turns[0]!.toUpperCase().replace(/[.,]/g, ' ; ')));
    expect(r?.benchmark).toEqual(expect.objectContaining({ file: 'vicuna.jsonl', id: '1' }));
  });

  test('a short benchmark prompt contained whole is found; 12 shared words are not a 13-gram', async () => {
    // koala_3 is 11 words: indexed whole.
    const r = await contamination(
      dir,
      item("Quick one. Explain recursion like I'm five, then like I'm a CS student!"),
    );
    expect(r?.benchmark).toEqual(expect.objectContaining({ file: 'koala.jsonl', id: 'koala_3' }));
    const twelve =
      'Give me a Python function that merges two sorted lists into one sorted list using a heap.';
    expect(await contamination(dir, item(twelve))).toBeUndefined();
    expect(await contamination(dir, item('Write a haiku about the sea.'))).toBeUndefined();
  });

  test('screening removes contaminated instructions before duplicates are considered', async () => {
    const planted =
      'Write a Python function that merges two sorted lists into one sorted list without using the built-in sort, and explain its running time.';
    const r = await screenBatch(
      dir,
      [item(planted), item('Plan a vegetable garden for a small yard.', 'r1-e00000-i0001')],
      {
        dedupe: { mode: 'exact', threshold: 0.8, shingle: 3 },
        seed: 1,
        decontaminate: true,
      },
    );
    expect(r.keep).toEqual(['r1-e00000-i0001']);
    expect(r.removed[0]).toEqual(expect.objectContaining({ id: 'r1-e00000-i0000', reason: 'contaminated' }));
  });
});

test('prepareQuality builds the index once; a bad benchmark file is a clear input error', async () => {
  const acts = createQualityActivities();
  const dir = tmpDir('codeclm-decontam-');
  const method = methodSchema.parse({ decontaminate: { ngram: 8 } });
  const r = await acts.prepareQuality({ outDir: dir, method, benchmarks: [vicuna, koala] });
  expect(r.benchmarkItems).toBeGreaterThan(6);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, '.work/quality/bench/manifest.json'), 'utf8'));
  expect(manifest.ngram).toBe(8);
  await expect(
    acts.prepareQuality({
      outDir: tmpDir('codeclm-decontam-'),
      method,
      benchmarks: [path.join(dir, 'missing.jsonl')],
    }),
  ).rejects.toThrow(/missing\.jsonl/);
});

test('`run --decontaminate A B` takes several files; a file with no item exits 2 naming it', () => {
  const run = (...argv: string[]) =>
    parseCommand(runCommand, ['--seeds', 's.jsonl', '--out', 'o', ...argv]).options.decontaminate;
  expect(benchmarkFiles(run('--decontaminate', vicuna, koala))).toEqual([vicuna, koala]);
  expect(benchmarkFiles(run('--decontaminate', vicuna, '--decontaminate', selfInstruct))).toEqual([
    vicuna,
    selfInstruct,
  ]);
  // `schedule create ID ... --decontaminate A B`: the ID is not a benchmark file.
  const sched = parseCommand(scheduleCreateCommand, [
    'nightly',
    '--every',
    '1d',
    '--seeds',
    's.jsonl',
    '--out',
    'o',
    '--decontaminate',
    koala,
    selfInstruct,
  ]);
  expect(sched.args).toEqual(['nightly']);
  expect(benchmarkFiles(sched.options.decontaminate)).toEqual([koala, selfInstruct]);
  const empty = path.join(tmpDir('codeclm-decontam-'), 'empty.jsonl');
  fs.writeFileSync(empty, '\n');
  expect(() => benchmarkFiles(run('--decontaminate', empty))).toThrow(/empty\.jsonl/);
});
