import path from 'node:path';
import { hash32 } from '../util/random';

/**
 * Layout of a run's out dir. Final outputs sit at the top (the README); the run's durable working
 * state sits under `.work/`, one file per item so that concurrent workers never write the same file
 * and a retried activity overwrites its own file with the same content.
 */
export function runPaths(outDir: string) {
  const work = path.join(outDir, '.work');
  const shard = (id: string) => (hash32(id) % 256).toString(16).padStart(2, '0');
  return {
    outDir,
    work,
    dataset: path.join(outDir, 'dataset.jsonl'),
    reportJson: path.join(outDir, 'report.json'),
    reportMd: path.join(outDir, 'report.md'),
    seeds: path.join(work, 'seeds.jsonl'),
    seedsInfo: path.join(work, 'seeds.info.json'),
    /** `{"runId"}` of the run this out dir belongs to (created once, by `run` before it starts). */
    runOwner: path.join(work, 'run.json'),
    encoded: path.join(work, 'encoded'),
    /** Every encoded seed's metadata in seed order, one JSON line each (written by buildPool). */
    encodedIndex: path.join(work, 'encoded.jsonl'),
    encodedFile: (index: number) => path.join(work, 'encoded', `${String(index).padStart(7, '0')}.json`),
    pool: path.join(work, 'pool.json'),
    rubricsFile: (entry: number) => path.join(work, 'rubrics', `${String(entry).padStart(5, '0')}.json`),
    records: path.join(work, 'records'),
    recordFile: (id: string) => path.join(work, 'records', shard(id), `${id}.json`),
    claims: path.join(work, 'claims'),
    claimFile: (key: string) => path.join(work, 'claims', `${key}.json`),
  };
}
export type RunPaths = ReturnType<typeof runPaths>;

/**
 * The same layout as store keys (relative to the out dir's root, `/`-separated), for reading and
 * writing through a Store (src/store/store.ts): local directory or s3://bucket/prefix alike.
 */
export const runKeys: RunPaths = runPaths('');
