import fs from 'node:fs';
import path from 'node:path';
import { LocalStore } from '../src/store/local';
import { openStore } from '../src/store/open';
import { joinLocation, parseS3Location, resolveLocation } from '../src/store/store';
import { batchSettingsSchema, cacheSchema } from '../src/schemas/config';
import { resolveCacheSettings } from '../src/cache/settings';
import { loadConfig } from '../src/config/load';
import { InputError } from '../src/util/errors';
import { tmpDir } from './helpers/env';
import { storeContract } from './helpers/storeContract';

storeContract('local directory', () => new LocalStore(tmpDir('codeclm-store-')));

test('the local store keeps the out dir layout: a key is a path under the directory, nothing else', async () => {
  const dir = tmpDir('codeclm-store-');
  const s = openStore(dir);
  expect(s).toBeInstanceOf(LocalStore);
  await s.writeJson('.work/records/ab/r1.json', { id: 'r1' });
  expect(JSON.parse(fs.readFileSync(path.join(dir, '.work/records/ab/r1.json'), 'utf8'))).toEqual({
    id: 'r1',
  });
  // No temp files left beside it.
  expect(fs.readdirSync(path.join(dir, '.work/records/ab'))).toEqual(['r1.json']);
  expect(s.where('dataset.jsonl')).toBe(path.join(dir, 'dataset.jsonl'));
});

test('s3:// locations: bucket and prefix parsed, bad ones refused with the reason', () => {
  expect(parseS3Location('s3://my-bucket/runs/a/')).toEqual({ bucket: 'my-bucket', prefix: 'runs/a' });
  expect(parseS3Location('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
  expect(resolveLocation('s3://my-bucket/runs//a/')).toBe('s3://my-bucket/runs//a');
  expect(() => parseS3Location('s3://My_Bucket/x')).toThrow('bad bucket name "My_Bucket"');
  expect(() => parseS3Location('s3://bucket/../x')).toThrow('"." and ".."');
  expect(joinLocation('s3://b/p', 'versions', 'v1')).toBe('s3://b/p/versions/v1');
  expect(joinLocation('/tmp/out', 'versions')).toBe('/tmp/out/versions');
  expect(resolveLocation('rel/dir')).toBe(path.resolve('rel/dir'));
});

test('batch.spool and cache.store: an s3:// location the store would refuse is refused when the config is read', () => {
  // Accepted here, such a spool failed every batch-mode call of the run later, at the worker.
  for (const bad of ['s3://My_Bucket/spool', 's3://b/spool', 's3://bucket/../spool', 's3://bucket/a/./b']) {
    expect(() => batchSettingsSchema.parse({ spool: bad })).toThrow(
      'an absolute directory or s3://bucket/prefix',
    );
    expect(() => cacheSchema.parse({ store: bad })).toThrow('expected s3://bucket/prefix');
    expect(() => parseS3Location(bad)).toThrow();
  }
  for (const good of ['s3://my-bucket', 's3://my-bucket/spool/', 's3://my.bucket/a/b']) {
    expect(batchSettingsSchema.parse({ spool: good }).spool).toBe(good);
    expect(cacheSchema.parse({ store: good }).store).toBe(good);
  }
});

test('a bad s3:// location in a config file is named in the error (field and line), not "0 problems"', () => {
  const file = path.join(tmpDir('codeclm-store-config-'), 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        roles: {
          strong: { model: 'm', baseURL: 'http://127.0.0.1:9/v1', batch: { spool: 's3://My_Bucket/s' } },
        },
        cache: { store: 's3://bucket/../x' },
      },
      null,
      2,
    ),
  );
  const err = (() => {
    try {
      loadConfig(file, {});
    } catch (e) {
      return e as InputError;
    }
  })();
  expect(err).toBeInstanceOf(InputError);
  expect(err!.problems).toEqual([
    expect.stringMatching(
      /^roles\.strong\.batch\.spool: an absolute directory or s3:\/\/bucket\/prefix \(line \d+\)$/,
    ),
    expect.stringMatching(/^cache\.store: expected s3:\/\/bucket\/prefix \(or a directory\) \(line \d+\)$/),
  ]);
});

test('CODECLM_CACHE_STORE with a bad s3:// location is bad input (exit 2) naming the variable', () => {
  const err = (() => {
    try {
      resolveCacheSettings({ CODECLM_CACHE_STORE: 's3://Bad_Bucket/llm' });
    } catch (e) {
      return e as Error;
    }
  })();
  expect(err).toBeInstanceOf(InputError);
  expect(err!.message).toBe(
    'CODECLM_CACHE_STORE: s3://Bad_Bucket/llm: not an s3://bucket/prefix location (bad bucket name "Bad_Bucket")',
  );
  expect(resolveCacheSettings({ CODECLM_CACHE_STORE: 's3://team-cache/llm/' }).store).toBe(
    's3://team-cache/llm',
  );
});
