import fs from 'node:fs';
import path from 'node:path';
import type { Counters } from '../schemas/run';
import type { Usage } from '../schemas/records';
import { CHARS_PER_TOKEN, stages, type Figures, type Stage, type TokensPerCall } from './figures';

/**
 * Run history of this machine: one line per completed run in CODECLM_HOME/history/runs.jsonl,
 * appended by the finalize activity. It holds counts, models and token usage only (no texts, no
 * keys), and is what `codeclm plan` measures its keep rates, tokens per call and repairs on.
 */
export interface HistoryEntry {
  run_id: string;
  finished_at: string;
  models: { strong: string; target: string; judge: string };
  theta: number;
  maxIterations: number;
  seeds: { count: number; chars: number };
  /** Pool entries that had rubrics written (one rubrics call each, repairs aside). */
  rubricEntries: number;
  counters: Pick<
    Counters,
    | 'seeds'
    | 'encoded'
    | 'instructions'
    | 'kept'
    | 'dropped'
    | 'failed'
    | 'keptByIteration'
    | 'judgedByIteration'
    | 'duplicatesRemoved'
    | 'nearDuplicatesRemoved'
    | 'contaminatedRemoved'
  > & { notStarted?: number };
  usage: Usage;
}

export function historyFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.resolve(env.CODECLM_HOME ?? '.codeclm'), 'history', 'runs.jsonl');
}

/** Appends one run; a retried finalize appends the same run again, which readHistory folds. */
export function appendHistory(entry: HistoryEntry, file = historyFile()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** Every run once (the last line of a run id wins); unreadable lines are skipped. */
export function readHistory(file = historyFile()): HistoryEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const byId = new Map<string, HistoryEntry>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as HistoryEntry;
      if (e && typeof e.run_id === 'string' && e.counters && e.usage) byId.set(e.run_id, e);
    } catch {
      // a line cut by a crash mid-append: the runs before and after it still count
    }
  }
  return [...byId.values()];
}

/**
 * The runs a plan should learn from: those with the same three models and theta (keep rates are a
 * property of the model pair and the threshold); failing that, none. Runs of other models would
 * carry another pair's keep rates, which is worse than the bench's documented defaults.
 */
export function matchingRuns(
  history: HistoryEntry[],
  models: HistoryEntry['models'],
  theta: number,
): HistoryEntry[] {
  return history.filter(
    (h) =>
      h.models.strong === models.strong &&
      h.models.target === models.target &&
      h.models.judge === models.judge &&
      h.theta === theta &&
      sum(Object.values(h.counters.judgedByIteration ?? {})) > 0,
  );
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Figures measured on `runs` (pooled: every judgement and call weighs the same), bench where silent. */
export function figuresFromRuns(runs: HistoryEntry[], fallback: Figures): Figures {
  if (runs.length === 0) return fallback;
  const judged: number[] = [];
  const kept: number[] = [];
  for (const r of runs) {
    for (const [k, n] of Object.entries(r.counters.judgedByIteration ?? {})) {
      const i = Number(k) - 1;
      judged[i] = (judged[i] ?? 0) + n;
      kept[i] = (kept[i] ?? 0) + (r.counters.keptByIteration[k] ?? 0);
    }
  }
  const keepRates: number[] = [];
  for (let i = 0; i < judged.length; i++) {
    // An iteration no run reached (all kept earlier) says nothing: reuse the one before it.
    if (!judged[i]) keepRates.push(keepRates[i - 1] ?? fallback.keepRates[i] ?? 0.5);
    else keepRates.push((kept[i] ?? 0) / judged[i]!);
  }

  const cells = new Map<string, { calls: number; prompt: number; completion: number }>();
  for (const r of runs) {
    for (const [key, u] of Object.entries(r.usage)) {
      const c = cells.get(key) ?? { calls: 0, prompt: 0, completion: 0 };
      // A cache hit is a call the method asked for that cost nothing this time: count it as a call
      // (a plan is for a run that may not hit), but it brings no tokens.
      c.calls += u.calls;
      c.prompt += u.promptTokens;
      c.completion += u.completionTokens;
      cells.set(key, c);
    }
  }
  const stageCalls = (stage: Stage) =>
    sum([...cells.entries()].filter(([k]) => k.startsWith(`${stage}/`)).map(([, c]) => c.calls)) +
    sum(runs.map((r) => cacheHits(r.usage, stage)));

  const totalJudged = sum(runs.map((r) => sum(Object.values(r.counters.judgedByIteration ?? {}))));
  const improvedJudged = sum(
    runs.map((r) =>
      sum(
        Object.entries(r.counters.judgedByIteration ?? {})
          .filter(([k]) => Number(k) > 1)
          .map(([, n]) => n),
      ),
    ),
  );
  const structural: Partial<Record<Stage, number>> = {
    encode: sum(runs.map((r) => r.counters.seeds)),
    rubrics: sum(runs.map((r) => r.rubricEntries)),
    improve: improvedJudged,
    answer: 2 * totalJudged,
    judge: 2 * totalJudged,
  };
  const callsPerStructuralCall = { ...fallback.callsPerStructuralCall };
  for (const stage of stages) {
    const n = structural[stage];
    if (n) callsPerStructuralCall[stage] = Math.max(1, stageCalls(stage) / n);
  }
  // Decode's batches are not counted by a run; its outputs are validated like rubrics', so it
  // repairs about as often.
  callsPerStructuralCall.decode = callsPerStructuralCall.rubrics;

  const tokens: Record<string, TokensPerCall> = { ...fallback.tokens };
  for (const [key, c] of cells) {
    if (c.calls === 0) continue;
    tokens[key] = { prompt: c.prompt / c.calls, completion: c.completion / c.calls };
  }
  // Decoded = worked on (which includes those removed as duplicates or contaminated) + decoded but
  // never started (the run had its pairs).
  const decoded = sum(runs.map((r) => r.counters.instructions + (r.counters.notStarted ?? 0)));
  const decode = cells.get('decode/strong');
  if (decode && decoded > 0)
    tokens['decode/strong'] = { ...tokens['decode/strong']!, completion: decode.completion / decoded };
  const encode = cells.get('encode/strong');
  const seedChars = sum(runs.map((r) => r.seeds.chars));
  const encodePromptOverhead =
    encode && encode.calls > 0
      ? Math.max(0, (encode.prompt - seedChars / CHARS_PER_TOKEN) / encode.calls)
      : fallback.encodePromptOverhead;
  // Every removal after decode (duplicates, near duplicates, benchmark overlaps) thins what decode yields.
  const dupes = sum(
    runs.map(
      (r) =>
        (r.counters.duplicatesRemoved ?? 0) +
        (r.counters.nearDuplicatesRemoved ?? 0) +
        (r.counters.contaminatedRemoved ?? 0),
    ),
  );

  return {
    source: 'history',
    label: `measured on ${runs.length} earlier run${runs.length === 1 ? '' : 's'} of this machine with the same models and theta (${historyFile()})`,
    runs: runs.length,
    keepRates: keepRates.length ? keepRates : fallback.keepRates,
    callsPerStructuralCall,
    tokens,
    encodePromptOverhead,
    duplicateRate: decoded > 0 ? dupes / decoded : 0,
  };
}

function cacheHits(usage: Usage, stage: Stage): number {
  return sum(
    Object.entries(usage)
      .filter(([k]) => k.startsWith(`${stage}/`))
      .map(([, u]) => u.cacheHits ?? 0),
  );
}
