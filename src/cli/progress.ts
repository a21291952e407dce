import type { RunProgress } from '../schemas/run';
import { usageTotals } from '../schemas/records';

/**
 * Progress on stderr: a redrawn bar on a TTY, a line every `intervalMs` otherwise (logs stay
 * readable in CI and files).
 */
export class ProgressReporter {
  private lastLine = 0;
  private drawn = false;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 10_000,
  ) {}

  update(p: RunProgress): void {
    if (this.pendingNote !== undefined && Date.now() - this.lastNote >= this.intervalMs) this.flushNote();
    const line = describe(p);
    if (this.stream.isTTY) {
      const width = 24;
      const done = Math.min(1, p.size ? p.counters.kept / p.size : 0);
      const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.');
      this.stream.write(`\r\x1b[2K[${bar}] ${line}`);
      this.drawn = true;
    } else if (Date.now() - this.lastLine >= this.intervalMs) {
      this.stream.write(`codeclm: ${line}\n`);
      this.lastLine = Date.now();
    }
  }

  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private lastNote = 0;
  private pendingNote: string | undefined;

  /**
   * A line beside the counters (the retry summary of src/cli/retries.ts): printed on its own line,
   * at most once per `intervalMs`, the newest one winning, so an outage shows as one line every few
   * seconds instead of a log entry per failed attempt.
   */
  note(line: string): void {
    this.pendingNote = line;
    if (Date.now() - this.lastNote < this.intervalMs) return;
    this.flushNote();
  }

  /** Prints a held-back note now (before the final summary). */
  flushNote(): void {
    if (this.pendingNote === undefined) return;
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`codeclm: ${this.pendingNote}\n`);
    this.drawn = false;
    this.pendingNote = undefined;
    this.lastNote = Date.now();
  }
}

export function describe(p: RunProgress): string {
  const c = p.counters;
  const t = usageTotals(p.usage);
  const state = p.state === 'paused' ? `PAUSED (${p.pausedReason ?? ''}) ` : '';
  // Duplicates and benchmark overlaps removed after decode (src/quality).
  const removed = c.duplicatesRemoved + (c.nearDuplicatesRemoved ?? 0) + (c.contaminatedRemoved ?? 0);
  return (
    `${state}${p.phase}: seeds ${c.encoded}/${c.seeds} encoded, pool ${c.pool}, ` +
    `instructions ${c.instructions}, kept ${c.kept}/${p.size}, dropped ${c.dropped}, failed ${c.failed}, ` +
    `${removed ? `removed ${removed}, ` : ''}${t.calls} LLM calls`
  );
}
