import { hash32 } from '../util/random';

/**
 * Text normalisation shared by duplicate removal and decontamination: case, punctuation and spacing
 * never make an instruction new. (No Node imports: pure functions, unit-tested.)
 */
export function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function words(text: string): string[] {
  const n = normalise(text);
  return n ? n.split(' ') : [];
}

/**
 * The distinct k-word shingles of a text. A text shorter than k words is one shingle (itself), so two
 * short texts compare by identity rather than not at all.
 */
export function shingles(text: string, k: number): Set<string> {
  const w = words(text);
  const out = new Set<string>();
  if (w.length === 0) return out;
  if (w.length <= k) {
    out.add(w.join(' '));
    return out;
  }
  for (let i = 0; i + k <= w.length; i++) out.add(w.slice(i, i + k).join(' '));
  return out;
}

/** Word n-grams of a text (contiguous, in order), as normalised strings. */
export function ngrams(text: string, n: number): string[] {
  const w = words(text);
  const out: string[] = [];
  for (let i = 0; i + n <= w.length; i++) out.push(w.slice(i, i + n).join(' '));
  return out;
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let common = 0;
  for (const s of a) if (b.has(s)) common++;
  return common / (a.size + b.size - common);
}

/** A 64-bit content key (two independent 32-bit hashes) as 16 hex digits. */
export function key64(text: string): string {
  return hash32(text).toString(16).padStart(8, '0') + hash32(`#${text}`).toString(16).padStart(8, '0');
}

/** The exact-duplicate key of an instruction: its normalised text. */
export function exactKey(text: string): string {
  return key64(normalise(text));
}
