import path from 'node:path';
import { runPaths } from '../store/runDir';
import { hash32 } from '../util/random';

/**
 * Where judgements live in a run's working state: one file per instruction (record id), in 256
 * shards like the kept records, so a retried write replaces itself and no directory grows huge.
 */
export function judgementsDir(outDir: string): string {
  return path.join(runPaths(outDir).work, 'judgements');
}

export function judgementFile(outDir: string, id: string): string {
  const shard = (hash32(id) % 256).toString(16).padStart(2, '0');
  return path.join(judgementsDir(outDir), shard, `${id}.json`);
}

export function viewerFile(outDir: string): string {
  return path.join(outDir, 'viewer.html');
}
