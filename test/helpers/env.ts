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
