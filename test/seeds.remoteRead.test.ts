import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { createEvalActivities } from '../src/activities/eval';
import type { ActivityDeps } from '../src/activities/deps';
import { createStageActivities } from '../src/activities/stages';
import { prefetchRunInputs } from '../src/cli/run';
import { limitsSchema } from '../src/schemas/config';
import { InputUnavailableError, prefetchRemoteInputs } from '../src/seeds/load';
import { isTransientStoreError } from '../src/store/transient';
import { InputError } from '../src/util/errors';
import { saveAwsEnv, tmpDir } from './helpers/env';

/**
 * Which failures to read an s3:// seed or instruction file are the user's input (not retried, exit
 * 2) and which may heal (retried by the activity, exit 1 at the CLI): an object store on a local port
 * answering as S3 does, with an object that is down (500) until the test brings it back.
 */
const restoreAwsEnv = saveAwsEnv();
let server: http.Server;
/** Keys answered with 500 InternalError (the SDK retries those itself, then gives up). */
const down = new Set<string>();

const s3Error = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const key = (req.url ?? '').split('?')[0]!.replace(/^\/bucket1\//, '');
    res.setHeader('Content-Type', 'application/xml');
    if (down.has(key)) {
      res.writeHead(500).end(s3Error('InternalError', 'We encountered an internal error. Please try again.'));
    } else if (key.startsWith('denied')) {
      res.writeHead(403).end(s3Error('AccessDenied', 'Access Denied'));
    } else if (key.endsWith('.jsonl') && !key.startsWith('missing')) {
      res.setHeader('Content-Type', 'application/x-ndjson');
      res.writeHead(200).end('{"instruction":"Name a prime number."}\n{"instruction":"Sort 3, 1, 2."}\n');
    } else {
      res.writeHead(404).end(s3Error('NoSuchKey', 'The specified key does not exist.'));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test-secret',
  });
});

afterAll(async () => {
  restoreAwsEnv();
  await new Promise((resolve) => server.close(resolve));
});

const prepareSeeds = (seedsFile: string) =>
  createStageActivities({} as ActivityDeps).prepareSeeds({
    outDir: tmpDir('codeclm-remote-seeds-'),
    seedsFile,
    skipInvalid: false,
    limits: limitsSchema.parse({}),
  });
const prepareEval = (instructionsFile: string) =>
  createEvalActivities().prepareEval({ outDir: tmpDir('codeclm-remote-eval-'), instructionsFile });

test('a store that fails for a while is retried by the activity, then the run goes on', async () => {
  down.add('flaky.jsonl');
  const err = await prepareSeeds('s3://bucket1/flaky.jsonl').catch((e: unknown) => e);
  // A plain error is retried under the activity's retry policy; a non-retryable failure is not.
  expect(err).toBeInstanceOf(InputUnavailableError);
  expect(err).not.toBeInstanceOf(ApplicationFailure);
  expect((err as Error).message).toMatch(/s3:\/\/bucket1\/flaky\.jsonl.*retry later/);
  const evalErr = await prepareEval('s3://bucket1/flaky.jsonl').catch((e: unknown) => e);
  expect(evalErr).toBeInstanceOf(InputUnavailableError);

  down.delete('flaky.jsonl');
  await expect(prepareSeeds('s3://bucket1/flaky.jsonl')).resolves.toMatchObject({ count: 2 });
  await expect(prepareEval('s3://bucket1/flaky.jsonl')).resolves.toMatchObject({ count: 2 });
});

test.each([
  ['a missing object', 's3://bucket1/missing.jsonl', /no such object/],
  ['access denied', 's3://bucket1/denied.jsonl', /Access Denied/],
])('%s is bad input: the activity fails at once, not retried', async (_what, url, reason) => {
  for (const prepare of [prepareSeeds, prepareEval]) {
    const err = await prepare(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ nonRetryable: true, type: 'InputError' });
    expect((err as Error).message).toMatch(reason);
  }
});

test('at the CLI an unreachable store is a failure to retry (exit 1), a missing object bad input (exit 2)', async () => {
  down.add('cli.jsonl');
  const unreachable = await prefetchRunInputs({ seeds: 's3://bucket1/cli.jsonl', out: tmpDir() }).catch(
    (e: unknown) => e,
  );
  expect(unreachable).toBeInstanceOf(InputUnavailableError);
  expect(unreachable).not.toBeInstanceOf(InputError);
  down.delete('cli.jsonl');
  await expect(prefetchRemoteInputs(['s3://bucket1/cli.jsonl'])).resolves.toBeUndefined();

  const missing = await prefetchRunInputs({ seeds: 's3://bucket1/missing-cli.jsonl', out: tmpDir() }).catch(
    (e: unknown) => e,
  );
  expect(missing).toBeInstanceOf(InputError);
});

test('run --out s3://: a store that answers 500 may heal (not bad input); a missing bucket is bad input', async () => {
  // The up-front check lists a prefix of the bucket: its request path is the bucket's, `/bucket2/`.
  down.add('/bucket2/');
  const busy = await prefetchRunInputs({ seeds: tmpDir(), out: 's3://bucket2/out' }).catch((e: unknown) => e);
  expect(busy).toBeInstanceOf(InputUnavailableError);
  expect((busy as Error).message).toMatch(/^--out s3:\/\/bucket2\/out: the object store did not answer/);
  down.delete('/bucket2/');
  const gone = await prefetchRunInputs({ seeds: tmpDir(), out: 's3://bucket3/out' }).catch((e: unknown) => e);
  expect(gone).toBeInstanceOf(InputError);
  expect((gone as Error).message).toMatch(/^--out s3:\/\/bucket3\/out: cannot use this bucket/);
});

test('network failures and throttling may heal; a wrong host name or missing credentials do not', () => {
  expect(
    isTransientStoreError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
  ).toBe(true);
  expect(
    isTransientStoreError(
      Object.assign(new Error('slow'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
    ),
  ).toBe(true);
  expect(
    isTransientStoreError(Object.assign(new Error('busy'), { $metadata: { httpStatusCode: 429 } })),
  ).toBe(true);
  expect(
    isTransientStoreError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })),
  ).toBe(false);
  expect(
    isTransientStoreError(Object.assign(new Error('no creds'), { name: 'CredentialsProviderError' })),
  ).toBe(false);
  expect(
    isTransientStoreError(
      Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    ),
  ).toBe(false);
});
