import path from 'node:path';
import { parseDelimited } from '../src/seeds/csv';
import { loadSeeds } from '../src/seeds/load';
import { tmpDir } from './helpers/env';
import { errorOf } from './helpers/expect';
import { writer } from './helpers/files';

const dir = tmpDir('codeclm-seeds-');
const write = writer(dir);
const jsonl = (...rows: unknown[]) =>
  rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
const examples = (p: string) => path.join(__dirname, '../examples', p);

describe('formats', () => {
  test('JSONL keeps ids, origins are file:line, blank lines are skipped', () => {
    const file = write(
      'a.jsonl',
      jsonl({ id: 'a', instruction: 'First' }, '', { id: 'b', instruction: ' Second ' }),
    );
    const r = loadSeeds(file, {});
    expect(r.format).toBe('jsonl');
    expect(r.field).toBe('instruction');
    expect(r.seeds).toEqual([
      { id: 'a', instruction: 'First', origin: `${file}:1` },
      { id: 'b', instruction: 'Second', origin: `${file}:3` },
    ]);
    expect(r.warnings).toEqual([]);
    expect(r.skipped).toEqual([]);
  });

  test('.ndjson is JSONL', () => {
    expect(loadSeeds(write('a.ndjson', jsonl({ prompt: 'x' })), {}).format).toBe('jsonl');
  });

  test('JSON array, with element lines for origins and generated ids', () => {
    const file = write(
      'a.json',
      '[\n  {"question": "One?"},\n  {"question": "Two?"}, {"question": "Three?"}\n]\n',
    );
    const r = loadSeeds(file, {});
    expect(r.format).toBe('json');
    expect(r.seeds.map((s) => [s.id, s.origin])).toEqual([
      ['seed-2', `${file}:2`],
      ['seed-3.1', `${file}:3.1`],
      ['seed-3.2', `${file}:3.2`],
    ]);
  });

  test('JSON array of strings, and a wrapper object with one array', () => {
    expect(loadSeeds(write('strings.json', '["a", "b"]'), {}).seeds.map((s) => s.instruction)).toEqual([
      'a',
      'b',
    ]);
    const r = loadSeeds(
      write('wrapped.json', '{"name": "set", "data": [\n {"text": "x"},\n {"text": "y"}\n]}'),
      {},
    );
    expect(r.seeds.map((s) => s.origin.split(':').pop())).toEqual(['2', '3']);
    expect(r.warnings.join('\n')).toMatch(/using the array under "data"/);
  });

  test('content overrules a misleading extension', () => {
    const asJson = loadSeeds(write('lines.json', jsonl({ prompt: 'p1' }, { prompt: 'p2' })), {});
    expect(asJson.format).toBe('jsonl');
    expect(asJson.warnings.join()).toMatch(/JSON Lines/);
    expect(loadSeeds(write('array.jsonl', '[{"prompt": "p"}]'), {}).format).toBe('json');
    expect(loadSeeds(write('noext', jsonl({ prompt: 'p' })), {}).format).toBe('jsonl');
    expect(loadSeeds(write('plain.md', 'Do a thing\nDo another\n'), {}).format).toBe('text');
  });

  test('CSV with quoting: commas, doubled quotes, newlines in quotes, CRLF', () => {
    const file = write(
      'a.csv',
      'id,Instruction,input\r\n1,"Say ""hi"", politely",\r\n2,"Two\r\nlines",ctx\r\n\r\n3,plain,\r\n',
    );
    const r = loadSeeds(file, {});
    expect(r.format).toBe('csv');
    expect(r.field).toBe('Instruction');
    expect(r.seeds).toEqual([
      { id: '1', instruction: 'Say "hi", politely', origin: `${file}:2` },
      { id: '2', instruction: 'Two\nlines\nctx', origin: `${file}:3` },
      { id: '3', instruction: 'plain', origin: `${file}:6` },
    ]);
  });

  test('TSV', () => {
    const r = loadSeeds(
      write('a.tsv', 'prompt\tcategory\nWrite a poem, please\tpoetry\nSum 2 and 2\tmath\n'),
      {},
    );
    expect(r.format).toBe('tsv');
    expect(r.seeds.map((s) => s.instruction)).toEqual(['Write a poem, please', 'Sum 2 and 2']);
  });

  test('plain text: one instruction per non-empty line, ids seed-<line>', () => {
    const file = write('a.txt', 'First one\n\n  Second one  \n');
    const r = loadSeeds(file, {});
    expect(r.format).toBe('text');
    expect(r.seeds).toEqual([
      { id: 'seed-1', instruction: 'First one', origin: `${file}:1` },
      { id: 'seed-3', instruction: 'Second one', origin: `${file}:3` },
    ]);
  });

  test('the bundled examples load', () => {
    const main = loadSeeds(examples('seeds.jsonl'), {});
    expect(main.seeds.length).toBeGreaterThanOrEqual(30);
    expect(main.warnings).toEqual([]);
    expect(main.seeds.find((s) => s.id === 'code-02')!.instruction).toMatch(/suggest a fix\.\nfunction sum/);
    for (const [f, format, field] of [
      ['formats/vicuna.jsonl', 'jsonl', 'turns.0'],
      ['formats/koala.jsonl', 'jsonl', 'prompt'],
      ['formats/self-instruct.jsonl', 'jsonl', 'instruction'],
      ['formats/seeds.csv', 'csv', 'instruction'],
      ['formats/seeds.txt', 'text', '(line)'],
    ] as const) {
      const r = loadSeeds(examples(f), {});
      expect([f, r.format, r.field]).toEqual([f, format, field]);
      expect(r.seeds.length).toBeGreaterThanOrEqual(5);
    }
  });
});

describe('field detection', () => {
  test('Vicuna turns[0] with question_id as id', () => {
    const r = loadSeeds(examples('formats/vicuna.jsonl'), {});
    expect(r.seeds[0]).toMatchObject({ id: '1', instruction: expect.stringMatching(/community library/) });
  });

  test('Koala {id, prompt}', () => {
    expect(loadSeeds(examples('formats/koala.jsonl'), {}).seeds[0]!.id).toBe('koala_1');
  });

  test('Self-Instruct appends instances[0].input only when non-empty', () => {
    const r = loadSeeds(examples('formats/self-instruct.jsonl'), {});
    expect(r.seeds[0]).toMatchObject({
      id: 'user_oriented_task_0',
      instruction: expect.stringMatching(/follow-up email\.\n- budget approved/),
    });
    expect(r.seeds[1]!.instruction).not.toContain('\n');
  });

  test('priority, case-insensitivity, input as instruction, context appended', () => {
    const file = write(
      'mixed.jsonl',
      jsonl(
        { Instruction: 'Translate', Input: 'bonjour' },
        { prompt: 'P', question: 'Q' },
        { input: 'only input' },
        { QUESTION: 'Why?', context: 'Because.' },
        {
          messages: [
            { role: 'system', content: 's' },
            { role: 'user', content: 'chat hi' },
          ],
        },
        { conversations: [{ from: 'human', value: 'sharegpt hi' }] },
      ),
    );
    const r = loadSeeds(file, {});
    expect(r.seeds.map((s) => s.instruction)).toEqual([
      'Translate\nbonjour',
      'P',
      'only input',
      'Why?\nBecause.',
      'chat hi',
      'sharegpt hi',
    ]);
    expect(r.warnings.join('\n')).toMatch(/different instruction fields/);
  });

  test('--field with dot paths and [n] overrides detection', () => {
    const file = write(
      'nested.jsonl',
      jsonl({ data: { question: 'Deep?' }, text: 'shallow' }, { data: { question: 'Deeper?' } }),
    );
    expect(loadSeeds(file, { field: 'data.question' }).seeds.map((s) => s.instruction)).toEqual([
      'Deep?',
      'Deeper?',
    ]);
    const turns = write('turns.jsonl', jsonl({ turns: ['a', 'b'] }));
    expect(loadSeeds(turns, { field: 'turns.1' }).seeds[0]!.instruction).toBe('b');
    expect(loadSeeds(turns, { field: 'turns[1]' }).field).toBe('turns[1]');
  });

  test('a --field missing on a line is an error for that line', () => {
    const file = write('partial.jsonl', jsonl({ q: 'yes' }, { other: 'no' }));
    const err = errorOf(() => loadSeeds(file, { field: 'q' }));
    expect(err.message).toContain(`${file}:2: field "q" not found; fields seen: other`);
    expect(err.problems).toHaveLength(1);
  });

  test('--field is refused for plain text', () => {
    expect(errorOf(() => loadSeeds(write('f.txt', 'x\n'), { field: 'text' })).message).toMatch(/plain text/);
  });

  test('ids: idx / uid / numbers kept, blank ids generated', () => {
    const file = write(
      'ids.jsonl',
      jsonl({ idx: 7, text: 'a' }, { uid: 'u-1', text: 'b' }, { id: '', text: 'c' }),
    );
    expect(loadSeeds(file, {}).seeds.map((s) => s.id)).toEqual(['7', 'u-1', 'seed-3']);
  });
});

describe('errors', () => {
  test('every bad line is reported with file:line and reason, in one InputError', () => {
    const file = write(
      'bad.jsonl',
      jsonl(
        { instruction: 'fine' },
        '{"instruction": "broken",',
        '[1, 2]',
        { title: 'no instruction', body: 'x' },
        { instruction: '   ' },
        { instruction: 'x'.repeat(50) },
        { id: { nested: true }, instruction: 'bad id' },
        '"just a string"',
      ),
    );
    const err = errorOf(() => loadSeeds(file, { maxSeedChars: 40 }));
    expect(err.message).toContain(`${file}: 7 invalid records`);
    expect(err.message).toContain('--skip-invalid');
    expect(err.message).toMatch(new RegExp(`${file}:2: invalid JSON at column \\d+`));
    expect(err.message).toContain(
      `${file}:3: expected a JSON object with an instruction field, got an array`,
    );
    expect(err.message).toMatch(
      new RegExp(`${file}:4: no instruction field found .*fields seen: title, body`),
    );
    expect(err.message).toContain(`${file}:5: empty instruction (field "instruction")`);
    expect(err.message).toContain(`${file}:6: instruction is 50 characters, over the limit of 40`);
    expect(err.message).toContain(`${file}:7: id field "id" must be a string or a number`);
    expect(err.message).toContain(
      `${file}:8: expected a JSON object with an instruction field, got a string`,
    );
  });

  test('duplicate ids name both lines', () => {
    const file = write(
      'dupid.jsonl',
      jsonl({ id: 'q', prompt: 'a' }, { id: 'r', prompt: 'b' }, { id: 'q', prompt: 'c' }),
    );
    expect(errorOf(() => loadSeeds(file, {})).message).toContain(
      `${file}:3: duplicate id "q" (already used at line 1)`,
    );
  });

  test('the listing is capped with "and N more"', () => {
    const file = write('many.jsonl', Array.from({ length: 30 }, () => '{').join('\n'));
    const err = errorOf(() => loadSeeds(file, {}));
    expect(err.message).toContain('30 invalid records');
    expect(err.problems).toHaveLength(21);
    expect(err.message).toContain('... and 10 more');
  });

  test('CSV: wrong column count and unterminated quotes', () => {
    const file = write('bad.csv', 'id,instruction\n1,ok\n2,a,b\n3,"never closed\n4,x\n');
    const err = errorOf(() => loadSeeds(file, {}));
    expect(err.message).toContain(`${file}:3: expected 2 columns as in the header row, got 3`);
    expect(err.message).toContain(`${file}:4: unterminated quoted field`);
  });

  test('CSV header problems and a header-only file', () => {
    expect(errorOf(() => loadSeeds(write('dup.csv', 'text,text\na,b\n'), {})).message).toMatch(
      /column "text" appears twice/,
    );
    expect(errorOf(() => loadSeeds(write('header.csv', 'id,instruction\n'), {})).message).toMatch(
      /only a header row/,
    );
  });

  test('bad JSON array gives file:line', () => {
    const file = write('broken.json', '[\n {"prompt": "a"},\n {"prompt": }\n]');
    expect(errorOf(() => loadSeeds(file, {})).message).toMatch(
      new RegExp(`${file}:3: invalid JSON at column \\d+`),
    );
  });

  test('empty and missing files', () => {
    expect(errorOf(() => loadSeeds(write('empty.jsonl', '\n  \n'), {})).message).toMatch(/is empty/);
    expect(errorOf(() => loadSeeds(path.join(dir, 'missing.jsonl'), {})).message).toMatch(
      /seed file not found/,
    );
  });

  test('over-long seeds use the default limit (22,528: see DEFAULT_MAX_SEED_CHARS)', () => {
    const file = write('long.txt', `${'y'.repeat(22_529)}\n${'z'.repeat(22_528)}\n`);
    const err = errorOf(() => loadSeeds(file, {}));
    expect(err.message).toContain(`${file}:1: instruction is 22529 characters, over the limit of 22528`);
    expect(err.message).not.toContain(`${file}:2:`);
  });
});

describe('skipInvalid', () => {
  test('returns good seeds and every skipped line with its reason', () => {
    const file = write(
      'skip.jsonl',
      jsonl(
        { prompt: 'ok 1' },
        'nope',
        { prompt: '' },
        { prompt: 'ok 2' },
        { id: 'seed-1', prompt: 'clash' },
      ),
    );
    const r = loadSeeds(file, { skipInvalid: true });
    expect(r.seeds.map((s) => s.instruction)).toEqual(['ok 1', 'ok 2']);
    expect(r.skipped).toEqual([
      { origin: `${file}:2`, reason: expect.stringMatching(/invalid JSON/) },
      { origin: `${file}:3`, reason: 'empty instruction (field "prompt")' },
      {
        origin: `${file}:5`,
        reason: expect.stringMatching(/duplicate id "seed-1" \(already used at line 1\)/),
      },
    ]);
  });

  test('still fails when nothing valid is left', () => {
    expect(errorOf(() => loadSeeds(write('allbad.jsonl', 'x\ny\n'), { skipInvalid: true })).message).toMatch(
      /no valid seeds/,
    );
  });
});

describe('duplicates', () => {
  test('same text after whitespace normalisation is kept once, with a warning naming the lines', () => {
    const file = write('dups.txt', 'Tell me a joke\nSomething else\n  Tell   me a\tjoke \nTell me a joke\n');
    const r = loadSeeds(file, {});
    expect(r.seeds.map((s) => s.id)).toEqual(['seed-1', 'seed-2']);
    expect(r.warnings).toEqual([`${file}: duplicate seed at lines 1, 3, 4; kept line 1 (id seed-1)`]);
  });
});

describe('scale', () => {
  test('100k-line JSONL and CSV load in linear time', () => {
    const n = 100_000;
    const rows: string[] = [];
    for (let i = 0; i < n; i++)
      rows.push(
        JSON.stringify({ id: `s${i}`, instruction: `Instruction number ${i} about topic ${i % 97}` }),
      );
    const file = write('big.jsonl', rows.join('\n'));
    let t = Date.now();
    expect(loadSeeds(file, {}).seeds).toHaveLength(n);
    expect(Date.now() - t).toBeLessThan(5000);

    const csv = [
      'id,instruction',
      ...Array.from({ length: n }, (_, i) => `${i},"Row ${i}, with a comma"`),
    ].join('\n');
    t = Date.now();
    expect(loadSeeds(write('big.csv', csv), {}).seeds).toHaveLength(n);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  test('CSV parser stays linear when a delimiter never reappears', () => {
    const text = 'instruction\n' + Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join('\n');
    const t = Date.now();
    expect(parseDelimited(text, ',')).toHaveLength(50_001);
    expect(Date.now() - t).toBeLessThan(2000);
  });
});

describe('single JSON objects', () => {
  test('a one-object file is one seed, even when the seed holds an array', () => {
    const r = loadSeeds(
      write('one.json', '{\n  "question_id": 9,\n  "turns": ["Only turn", "second"]\n}\n'),
      {},
    );
    expect(r.seeds).toEqual([
      { id: '9', instruction: 'Only turn', origin: expect.stringMatching(/one\.json:1$/) },
    ]);
    expect(errorOf(() => loadSeeds(write('two.json', '{"a": [1], "b": [2]}'), {})).message).toMatch(
      /several arrays \(a, b\)/,
    );
  });
});
