import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Metadata } from '../schemas/records';
import type { Failure } from '../schemas/run';
import { runPaths } from '../store/runDir';
import { readJson, writeJsonAtomic } from '../store/files';
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
      const pool = readJson<{ entries: { metadata: Metadata }[] }>(runPaths(input.outDir).pool);
      const entry = pool?.entries[input.entry];
      if (!entry)
        throw ApplicationFailure.nonRetryable(
          `no pool entry ${input.entry} in ${runPaths(input.outDir).pool}`,
          'InputError',
        );
      return { metadata: entry.metadata };
    },

    async saveFailure(input: { outDir: string; id: string; failure: Failure }): Promise<void> {
      writeJsonAtomic(failureFile(input.outDir, input.id), { id: input.id, ...input.failure });
    },
  };
}
