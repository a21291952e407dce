import { ApplicationFailure } from '@temporalio/common';
import type { Store } from './store';

/**
 * The parsed lines of a JSONL snapshot in a Store (a run's seeds, an evaluation's instructions),
 * cached per worker process, keyed by where the object is and checked against its tag (one stat, a
 * HEAD request on S3, not a download per call). The cache holds the parse in flight, not only its
 * result: at the start of a run every slot of a process asks at once, and 64 parses of a
 * 100,000-seed file at once took a worker from 0.6 to 1.5 GB (src/cluster/measure.ts); one parse
 * serves them all. A failed read is not cached: the next activity (or this one's retry) reads again.
 */
export class SnapshotCache<T> {
  private readonly entries = new Map<string, { tag: string; items: Promise<T[]> }>();

  /** `what` names the snapshot in the error when it is missing ("seed snapshot"). */
  constructor(
    private readonly what: string,
    private readonly parse: (line: string) => T,
    private readonly kept = 16,
  ) {}

  async get(store: Store, key: string): Promise<T[]> {
    const where = store.where(key);
    const st = await store.stat(key);
    if (!st) throw ApplicationFailure.nonRetryable(`no ${this.what} at ${where}`, 'InputError');
    const hit = this.entries.get(where);
    if (hit && hit.tag === st.tag) return hit.items;
    const items = (async () => {
      const parsed: T[] = [];
      for await (const l of store.lines(key)) if (l.trim()) parsed.push(this.parse(l));
      return parsed;
    })();
    const entry = { tag: st.tag, items };
    this.entries.set(where, entry);
    items.catch(() => this.entries.get(where) === entry && this.entries.delete(where));
    if (this.entries.size > this.kept) this.entries.delete(this.entries.keys().next().value!);
    return items;
  }
}
