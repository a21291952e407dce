import crypto from 'node:crypto';
import type { DatasetRecord, Metadata, Seed } from '../schemas/records';
import { runKeys } from '../store/runDir';
import { openStore } from '../store/open';
import { encodedMetadata, joinLocation, type Store } from '../store/store';
import { distribution, jensenShannon } from '../report/build';
import { table } from '../report/markdown';

/**
 * What changed between two versions of a scheduled dataset: seeds added/removed (by the hash of the
 * seed's normalised text), the shift of the seeds' metadata distribution (Jensen-Shannon divergence
 * of use cases and of skills, in bits), and pairs added/removed (by the hash of the instruction).
 */
export interface SetChange {
  current: number;
  previous: number;
  added: number;
  removed: number;
  unchanged: number;
}

export interface VersionChanges {
  version: string;
  /** null for the first version of a schedule. */
  previous: string | null;
  seeds: SetChange;
  metadata: {
    use_cases_jsd: number | null;
    skills_jsd: number | null;
    use_cases_added: string[];
    use_cases_removed: string[];
    skills_added: string[];
    skills_removed: string[];
  };
  pairs: SetChange;
  /** A few examples, for the report: the text of seeds added/removed (cut to 200 chars). */
  examples: { seeds_added: string[]; seeds_removed: string[] };
}

const MAX_LISTED = 20;

export function textHash(text: string): string {
  const norm = text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
  return crypto.createHash('sha256').update(norm).digest('hex').slice(0, 32);
}

async function* readLines<T>(store: Store, key: string): AsyncGenerator<T> {
  for await (const l of store.lines(key)) if (l.trim()) yield JSON.parse(l) as T;
}

export interface VersionContent {
  seeds: Map<string, string>;
  metadata: Metadata[];
  pairs: Set<string>;
}

/** A version's seeds, seed metadata and pairs, from its directory (a path or s3:// location). */
export async function readVersion(dir: string): Promise<VersionContent> {
  const store = openStore(dir);
  const seeds = new Map<string, string>();
  for await (const s of readLines<Seed>(store, runKeys.seeds))
    seeds.set(textHash(s.instruction), s.instruction);
  const metadata = (await encodedMetadata<Metadata>(store, runKeys.encodedIndex, runKeys.encoded)).filter(
    (m): m is Metadata => !!m,
  );
  const pairs = new Set<string>();
  for await (const r of readLines<DatasetRecord>(store, runKeys.dataset)) pairs.add(textHash(r.instruction));
  return { seeds, metadata, pairs };
}

function setChange(cur: Set<string>, prev: Set<string>): SetChange {
  let unchanged = 0;
  for (const k of cur) if (prev.has(k)) unchanged++;
  return {
    current: cur.size,
    previous: prev.size,
    added: cur.size - unchanged,
    removed: prev.size - unchanged,
    unchanged,
  };
}

const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.keys(a)
    .filter((k) => !(k in b))
    .slice(0, MAX_LISTED);

export function compareVersions(
  version: string,
  cur: VersionContent,
  previous: string | null,
  prev: VersionContent | null,
): VersionChanges {
  const p: VersionContent = prev ?? { seeds: new Map(), metadata: [], pairs: new Set() };
  const dc = distribution(cur.metadata);
  const dp = distribution(p.metadata);
  const clip = (s: string) => (s.length > 200 ? `${s.slice(0, 199)}…` : s);
  return {
    version,
    previous,
    seeds: setChange(new Set(cur.seeds.keys()), new Set(p.seeds.keys())),
    metadata: {
      use_cases_jsd: prev ? jensenShannon(dp.use_cases, dc.use_cases) : null,
      skills_jsd: prev ? jensenShannon(dp.skills, dc.skills) : null,
      use_cases_added: prev ? diff(dc.use_cases, dp.use_cases) : [],
      use_cases_removed: prev ? diff(dp.use_cases, dc.use_cases) : [],
      skills_added: prev ? diff(dc.skills, dp.skills) : [],
      skills_removed: prev ? diff(dp.skills, dc.skills) : [],
    },
    pairs: setChange(cur.pairs, p.pairs),
    examples: {
      seeds_added: [...cur.seeds]
        .filter(([k]) => !p.seeds.has(k))
        .slice(0, MAX_LISTED)
        .map(([, t]) => clip(t)),
      seeds_removed: [...p.seeds]
        .filter(([k]) => !cur.seeds.has(k))
        .slice(0, MAX_LISTED)
        .map(([, t]) => clip(t)),
    },
  };
}

export function renderChangesMarkdown(c: VersionChanges): string {
  const jsd = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  const lines = [
    '',
    `## Changes since the previous version`,
    '',
    c.previous
      ? `Version \`${c.version}\` against \`${c.previous}\`.`
      : `Version \`${c.version}\` is the first version of this schedule: everything is new.`,
    '',
    table(
      ['', 'now', 'before', 'added', 'removed', 'unchanged'],
      [
        [
          'seeds (by text hash)',
          c.seeds.current,
          c.seeds.previous,
          c.seeds.added,
          c.seeds.removed,
          c.seeds.unchanged,
        ],
        [
          'pairs (by instruction hash)',
          c.pairs.current,
          c.pairs.previous,
          c.pairs.added,
          c.pairs.removed,
          c.pairs.unchanged,
        ],
      ],
    ),
    '',
  ];
  if (c.previous) {
    lines.push(
      `Seed metadata shift, Jensen-Shannon divergence (bits; 0 = same, 1 = disjoint): use cases **${jsd(c.metadata.use_cases_jsd)}**, skills **${jsd(c.metadata.skills_jsd)}**.`,
      '',
    );
    const list = (name: string, xs: string[]) =>
      xs.length ? [`- ${name}: ${xs.map((x) => `\`${x}\``).join(', ')}`] : [];
    const items = [
      ...list('new use cases', c.metadata.use_cases_added),
      ...list('use cases gone', c.metadata.use_cases_removed),
      ...list('new skills', c.metadata.skills_added),
      ...list('skills gone', c.metadata.skills_removed),
    ];
    if (items.length) lines.push(...items, '');
    if (c.examples.seeds_added.length)
      lines.push(
        'Seeds added (first few):',
        '',
        ...c.examples.seeds_added.map((s) => `- ${s.replace(/\n/g, ' ')}`),
        '',
      );
    if (c.examples.seeds_removed.length)
      lines.push(
        'Seeds removed (first few):',
        '',
        ...c.examples.seeds_removed.map((s) => `- ${s.replace(/\n/g, ' ')}`),
        '',
      );
  }
  return lines.join('\n');
}

export function versionsDir(outDir: string): string {
  return joinLocation(outDir, 'versions');
}
