import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load';
import { maxRunIdLength } from '../src/cli/ids';
import { checkUserId } from '../src/cli/session';
import {
  MAX_ID_LENGTH,
  encodeWorkflowId,
  entryWorkflowId,
  longestEvalWorkflowId,
  longestRunWorkflowId,
} from '../src/workflows/ids';
import { tmpDir } from './helpers/env';

/**
 * One id limit everywhere (issue 13): the cluster's limit.maxIDLength is 255 (PostgreSQL's
 * VARCHAR(255)); `run` refuses, with exit 2, an id whose longest derived workflow id would pass it.
 * That the longest accepted id works on a real cluster is shown by test/cluster.test.ts.
 */
const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');
const examples = path.join(__dirname, '..', 'examples', 'seeds.jsonl');

test('the longest derived workflow id follows the seed count, pool size and rounds', () => {
  expect(longestRunWorkflowId('R', { encodeChunks: 1, poolSize: 200, rounds: 3 })).toBe('R/r3-e00199');
  expect(longestRunWorkflowId('R', { encodeChunks: 400, poolSize: 10, rounds: 1 })).toBe('R/encode-399');
  expect(longestRunWorkflowId('R', { encodeChunks: 1, poolSize: 1_000_000, rounds: 12 })).toBe(
    'R/r12-e999999',
  );
  // The same builders name the children, so these are the ids a run really uses.
  expect(encodeWorkflowId('R', 7)).toBe('R/encode-7');
  expect(entryWorkflowId('R', 2, 31)).toBe('R/r2-e00031');
  expect(longestEvalWorkflowId('E')).toBe('E/chunk-00000');
});

test('maxRunIdLength leaves exactly enough room for the longest derived id', () => {
  const config = loadConfig(undefined, {});
  const { max, example } = maxRunIdLength(100_000, config);
  // 100,000 seeds: 400 encode chunks ("/encode-399", 11), beats "/r3-e00199" (10).
  expect(example).toBe('<id>/encode-399');
  expect(max).toBe(MAX_ID_LENGTH - '/encode-399'.length);
  expect(maxRunIdLength(10, config).max).toBe(MAX_ID_LENGTH - '/r3-e00199'.length);
});

function run(runId: string) {
  return spawnSync(
    process.execPath,
    [bin, 'run', '--seeds', examples, '--out', tmpDir('codeclm-ids-'), '--run-id', runId, '--no-check'],
    {
      encoding: 'utf8',
      timeout: 60_000,
      // A cluster that is not there: the id is refused before anything connects.
      env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:9', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' },
    },
  );
}

test('run refuses a --run-id one character too long, with exit 2 naming the limit and the longest id', () => {
  const seeds = fs.readFileSync(examples, 'utf8').split('\n').filter(Boolean).length;
  const { max } = maxRunIdLength(seeds, loadConfig(undefined, {}));
  const out = run('r'.repeat(max + 1));
  expect(out.status).toBe(2);
  expect(out.stderr).toContain(`--run-id is ${max + 1} characters; at most ${max} fit this run`);
  expect(out.stderr).toContain(`longer than ${MAX_ID_LENGTH} characters (limit.maxIDLength`);
  expect(out.stderr).toContain("this run's longest workflow id is <id>/r3-e00199");
});

test('run refuses a --run-id over 255 characters before reading anything', () => {
  const out = run('r'.repeat(MAX_ID_LENGTH + 1));
  expect(out.status).toBe(2);
  expect(out.stderr).toContain(`at most ${MAX_ID_LENGTH} fit`);
});

test('an eval id leaves room for its chunk ids: at most 243 characters', () => {
  expect(checkUserId('e'.repeat(243), 'eval-id', 'eval', longestEvalWorkflowId)).toHaveLength(243);
  expect(() => checkUserId('e'.repeat(244), 'eval-id', 'eval', longestEvalWorkflowId)).toThrow(
    'codeclm eval: --eval-id is 244 characters; at most 243 fit.',
  );
});
