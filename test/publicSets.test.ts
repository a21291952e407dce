import fs from 'node:fs';
import path from 'node:path';
import { loadInstructionSet } from '../src/activities/eval';
import { parseCommand } from '../src/cli/command';
import { evalCommand, prepareEvalInput } from '../src/cli/eval';
import { prepareRunInput, runCommand } from '../src/cli/run';
import { loadSeeds } from '../src/seeds/load';
import { DEFAULT_MAX_SEED_CHARS, maxSeedCharsFor } from '../src/schemas/config';
import { tmpDir } from './helpers/env';

/**
 * The four instruction sets of the paper's evaluation, in their public formats (fixtures written for
 * this test, a few lines each, in the shapes of lm-sys/FastChat vicuna_bench/question.jsonl,
 * arnav-gudibande/koala-test-set koala_test_set.jsonl, yizhongw/self-instruct
 * human_eval/user_oriented_instructions.jsonl and nlpxucan/WizardLM WizardLM_testset.jsonl), load as
 * seeds (`run --seeds`) and as eval sets (`eval --instructions`) with the default limits.
 */
const fixture = (name: string) => path.join(__dirname, 'fixtures/public-sets', name);
const out = tmpDir('codeclm-public-sets-');
// No provider and no config file: the defaults, as a new user gets them.
const env = { ...process.env };
beforeAll(() => {
  for (const k of ['OPENAI_BASE_URL', 'OPENAI_API_KEY', 'CODECLM_STRONG_MODEL', 'CODECLM_TARGET_MODEL'])
    delete process.env[k];
});
afterAll(() => {
  process.env = env;
});

function asRun(file: string) {
  const { options } = parseCommand(runCommand, ['--seeds', fixture(file), '--out', path.join(out, 'run')]);
  return prepareRunInput(options, 'public-sets');
}
function asEval(file: string) {
  const { options } = parseCommand(evalCommand, [
    '--instructions',
    fixture(file),
    '--out',
    path.join(out, `eval-${file}`),
  ]);
  prepareEvalInput(options, 'public-sets');
  // prepareEvalInput validates (and exits 2 on any refused line); the eval workflow's activity then
  // loads the file the same way.
  return loadInstructionSet(fixture(file), { maxChars: DEFAULT_MAX_SEED_CHARS });
}

describe('the default seed-length limit', () => {
  test('is derived from a context budget, and takes the longest Koala prompt', () => {
    expect(DEFAULT_MAX_SEED_CHARS).toBe(maxSeedCharsFor(8192, 1024));
    expect(DEFAULT_MAX_SEED_CHARS).toBe(22_528);
    expect(DEFAULT_MAX_SEED_CHARS).toBeGreaterThan(14_245);
    // UTF-8 at worst 4 bytes a character: far below Temporal's 2 MB payload limit.
    expect(DEFAULT_MAX_SEED_CHARS * 4).toBeLessThan((2 * 1024 * 1024) / 10);
  });
});

describe('public evaluation sets load with the defaults', () => {
  test('Vicuna 80 (question.jsonl): turns[0], question_id, category', () => {
    const run = asRun('question.jsonl');
    expect(run.config.limits.maxSeedChars).toBe(DEFAULT_MAX_SEED_CHARS);
    const seeds = loadSeeds(run.seedsFile, { maxSeedChars: run.config.limits.maxSeedChars }).seeds;
    expect(seeds.map((s) => s.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    // Only the first turn is the instruction; the follow-up turn is not appended.
    expect(seeds[5]!.instruction).toBe(
      'Draft a short note to my landlord asking to repaint the hallway before the new lease starts.',
    );
    const set = asEval('question.jsonl');
    expect(set.instructions.map((i) => [i.id, i.category])).toEqual([
      ['1', 'generic'],
      ['2', 'knowledge'],
      ['3', 'roleplay'],
      ['4', 'fermi'],
      ['5', 'coding'],
      ['6', 'writing'],
    ]);
  });

  test('Koala 180 (koala_test_set.jsonl): prompt and id, a 14,000+ character prompt included', () => {
    const run = asRun('koala_test_set.jsonl');
    const seeds = loadSeeds(run.seedsFile, { maxSeedChars: run.config.limits.maxSeedChars }).seeds;
    expect(seeds.map((s) => s.id)).toEqual(['0', '1', '2', '3']);
    const longest = Math.max(...seeds.map((s) => s.instruction.length));
    expect(longest).toBeGreaterThan(14_000);
    // The limit of before (8,000) refused it: the fixture really exercises the new default.
    expect(() => loadSeeds(run.seedsFile, { maxSeedChars: 8000 })).toThrow(/over the limit of 8000/);
    const set = asEval('koala_test_set.jsonl');
    expect(set.instructions).toHaveLength(4);
    expect(set.instructions[3]!.instruction).toMatch(/^Below is the incident log/);
  });

  test('Self-Instruct user-oriented 252: instruction with instances[0].input appended', () => {
    const run = asRun('user_oriented_instructions.jsonl');
    const seeds = loadSeeds(run.seedsFile, { maxSeedChars: run.config.limits.maxSeedChars }).seeds;
    expect(seeds.map((s) => s.id)).toEqual([
      'user_oriented_task_0',
      'user_oriented_task_1',
      'user_oriented_task_2',
    ]);
    expect(seeds[1]!.instruction).toBe(
      'Translate the phrase into French and Spanish.\nWhere is the nearest pharmacy?',
    );
    // An empty instance input adds nothing.
    expect(seeds[2]!.instruction).toBe(
      'Suggest a gentle four-week running plan for someone coming back from a knee injury.',
    );
    const set = asEval('user_oriented_instructions.jsonl');
    expect(set.instructions[0]!.instruction).toContain('- search is 30% faster');
  });

  test('Evol-Instruct test 218 (WizardLM_testset.jsonl): Instruction, idx, Skill as the category', () => {
    const run = asRun('WizardLM_testset.jsonl');
    const seeds = loadSeeds(run.seedsFile, { maxSeedChars: run.config.limits.maxSeedChars }).seeds;
    expect(seeds.map((s) => s.id)).toEqual(['1', '2', '3']);
    expect(seeds[0]!.instruction).toMatch(/^A train leaves at 9:40/);
    const set = asEval('WizardLM_testset.jsonl');
    expect(set.instructions.map((i) => i.category)).toEqual(['Math', 'Code Generation', 'Commonsense']);
  });

  test('the Hugging Face copy of Self-Instruct (instances as lists) appends the first input', () => {
    const file = path.join(out, 'hf-self-instruct.jsonl');
    fs.writeFileSync(
      file,
      `${JSON.stringify({
        id: 'user_oriented_task_9',
        motivation_app: 'Yelp',
        instruction: 'Classify the business by what it offers.',
        instances: { input: ['Tyres fitted while you wait.'], output: ['Auto services'] },
      })}\n`,
    );
    expect(loadSeeds(file, {}).seeds[0]!.instruction).toBe(
      'Classify the business by what it offers.\nTyres fitted while you wait.',
    );
  });
});
