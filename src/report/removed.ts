import path from 'node:path';
import type { Counters } from '../schemas/run';
import type { Removal, RemovalReason } from '../quality/settings';
import { qualityKeys } from '../quality/store';
import { readBenchManifest } from '../quality/benchmarks';
import type { Store } from '../store/store';
import { table } from './markdown';

/**
 * The "removed" section of report.json / report.md: every instruction removed after decode, by reason
 * (exact duplicate, near duplicate of which id and how similar, contaminated by which benchmark item),
 * with a few examples; removed.jsonl in the out dir lists them all. Counts come from the run's
 * counters (the same ones the kept + dropped + failed + removed = instructions identity uses);
 * examples and the list from the stored screening decisions (src/quality).
 */
export interface RemovedSection {
  total: number;
  by_reason: Record<RemovalReason, number>;
  /** Up to EXAMPLES per reason. */
  examples: Removal[];
  /** removed.jsonl (every removal, one JSON object a line), or null when nothing was removed. */
  file: string | null;
  /** The benchmark files the run was decontaminated against (`--decontaminate`), with their items. */
  benchmarks?: { file: string; items: number }[];
}

export const EXAMPLES = 5;

export function removedCounts(c: Counters): Record<RemovalReason, number> {
  return {
    'exact-duplicate': c.duplicatesRemoved ?? 0,
    'near-duplicate': c.nearDuplicatesRemoved ?? 0,
    contaminated: c.contaminatedRemoved ?? 0,
  };
}

/** Reads the screening decisions in batch order, writes removed.jsonl, returns the section. */
export async function collectRemovals(store: Store, counters: Counters): Promise<RemovedSection> {
  const by_reason = removedCounts(counters);
  const total = Object.values(by_reason).reduce((a, b) => a + b, 0);
  const examples: Removal[] = [];
  const shown: Record<string, number> = {};
  const batches = (await store.list(qualityKeys.decisionsDir)).filter((f) => f.endsWith('.json'));
  let listed = 0;
  // Streamed (a multipart upload on S3): the list can be long, the examples are few.
  async function* lines(): AsyncGenerator<string> {
    for (const b of batches) {
      const decision = await store.readJson<{ removed: Removal[] }>(b);
      for (const r of decision?.removed ?? []) {
        listed++;
        if ((shown[r.reason] ?? 0) < EXAMPLES) {
          shown[r.reason] = (shown[r.reason] ?? 0) + 1;
          examples.push(r);
        }
        yield `${JSON.stringify(r)}\n`;
      }
    }
  }
  const key = 'removed.jsonl';
  if (batches.length) await store.writeStream(key, lines());
  if (!listed) await store.remove(key);
  const manifest = await readBenchManifest(store);
  const benchmarks = manifest?.files.map((f) => ({ file: f.file, items: f.items }));
  return {
    total,
    by_reason,
    examples,
    file: listed ? store.where(key) : null,
    ...(benchmarks ? { benchmarks } : {}),
  };
}

const REASON_LABEL: Record<RemovalReason, string> = {
  'exact-duplicate': 'exact duplicate',
  'near-duplicate': 'near duplicate',
  contaminated: 'benchmark contamination',
};

function clip(text: string, n = 90): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** Why an instruction was removed, in words: "near duplicate of r1-e00002-i0003 (Jaccard 0.86)". */
export function removalReason(r: Removal): string {
  if (r.reason === 'contaminated' && r.benchmark)
    return `shares "${clip(r.benchmark.ngram, 60)}" with ${r.benchmark.file} item ${r.benchmark.id}`;
  if (r.reason === 'near-duplicate') return `near duplicate of ${r.of} (Jaccard ${r.similarity?.toFixed(2)})`;
  return `exact duplicate of ${r.of}`;
}

/** The section's sentence and tables, shared by report.md and report.html. */
export function removedParts(s: RemovedSection, c: Counters) {
  const flight = (c.leftInFlight ?? 0) > 0 ? ` + ${c.leftInFlight} left in flight` : '';
  return {
    summary:
      `Removed before any answer or judge call: ${s.total} (kept ${c.kept} + dropped ${c.dropped} + ` +
      `failed ${c.failed} + removed ${s.total}${flight} = ${c.instructions} instructions).`,
    reasons: [
      ['reason', 'removed'],
      (Object.keys(REASON_LABEL) as RemovalReason[]).map((k) => [REASON_LABEL[k], s.by_reason[k]]),
    ] as [string[], (string | number)[][]],
    examples: [
      ['id', 'instruction', 'why'],
      s.examples.map((r) => [r.id, clip(r.text), removalReason(r)]),
    ] as [string[], string[][]],
    list: s.file ? `Every removal, with its reason: ${path.basename(s.file)}.` : undefined,
    benchmarks: s.benchmarks?.length
      ? `Decontaminated against: ${s.benchmarks.map((b) => `${path.basename(b.file)} (${b.items} items)`).join(', ')}.`
      : undefined,
  };
}

/** Whether the report has a removed section: something was removed, or benchmarks were checked. */
export function hasRemovedSection(s: RemovedSection | undefined): s is RemovedSection {
  return !!s && (s.total > 0 || !!s.benchmarks?.length);
}

export function renderRemovedMarkdown(s: RemovedSection | undefined, c: Counters): string[] {
  if (!hasRemovedSection(s)) return [];
  const p = removedParts(s, c);
  return [
    '## Removed after decode',
    '',
    p.summary,
    '',
    table(...p.reasons),
    '',
    ...(s.examples.length ? [table(...p.examples), ''] : []),
    ...(p.benchmarks ? [p.benchmarks, ''] : []),
    ...(p.list ? [p.list, ''] : []),
  ];
}
