import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The suite's shared dev server (started in globalSetup). */
export function testAddress(): string {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address)
    throw new Error(
      'TEMPORAL_TEST_ADDRESS is not set: run tests through jest (globalSetup starts the server)',
    );
  return address;
}

export function tmpDir(prefix = 'codeclm-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A task queue no other test uses, so workers of different tests never pick up each other's tasks. */
export function uniqueQueue(name: string): string {
  return `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The AWS SDK settings a test points at its own object store. */
const AWS_VARS = [
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
];

/** Saves this process's AWS SDK settings; the returned function puts them back (set or unset). */
export function saveAwsEnv(): () => void {
  const saved = Object.fromEntries(AWS_VARS.map((k) => [k, process.env[k]]));
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
