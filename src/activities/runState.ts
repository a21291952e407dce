import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Metadata } from '../schemas/records';
import type { Failure } from '../schemas/run';
import { runKeys, runPaths } from '../store/runDir';
import { openStore } from '../store/open';
import { hash32 } from '../util/random';

/**
 * Small file activities that let the workflows stay small at any run size (issue 4): a pool entry's
 * metadata is read from pool.json where it is needed (never carried through continue-as-new), and
 * every failed item leaves one file (by id, written atomically) so the full list of failures
 * survives however many there are, while workflow state lists only the first few.
 */
export function failureFile(outDir: string, id: string): string {
  const shard = (hash32(id) % 256).toString(16).padStart(2, '0');
  return path.join(runPaths(outDir).work, 'failures', shard, `${id}.json`);
}

export function createRunStateActivities() {
  return {
    async readPoolEntry(input: { outDir: string; entry: number }): Promise<{ metadata: Metadata }> {
      // No cache: the file is small, read a few times per entry; a worker keeps no per-run state.
      const store = openStore(input.outDir);
      const pool = await store.readJson<{ entries: { metadata: Metadata }[] }>(runKeys.pool);
      const entry = pool?.entries[input.entry];
      if (!entry)
        throw ApplicationFailure.nonRetryable(
          `no pool entry ${input.entry} in ${store.where(runKeys.pool)}`,
          'InputError',
        );
      return { metadata: entry.metadata };
    },

    async saveFailure(input: { outDir: string; id: string; failure: Failure }): Promise<void> {
      await openStore(input.outDir).writeJson(failureFile('', input.id), { id: input.id, ...input.failure });
    },
  };
}
