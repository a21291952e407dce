import fs from 'node:fs';

/** `n` distinct seed instructions (from `offset` on), readable enough for the simulator's models. */
export function makeSeeds(n: number, offset = 0): string[] {
  const tasks = [
    'Write a Python function that',
    'Explain to a beginner how',
    'Draft an email that',
    'Plan a week-long trip where',
    'Write a SQL query that',
    'Summarise for a manager why',
  ];
  const topics = [
    'merges sorted lists',
    'compound interest works',
    'declines a meeting politely',
    'a family visits Lisbon',
    'finds duplicate customers',
    'the release slipped',
  ];
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return `${tasks[i % tasks.length]} ${topics[Math.floor(i / tasks.length) % topics.length]} (case ${i + 1}, variant ${String.fromCharCode(97 + (i % 26))}).`;
  });
}

/** A JSONL seed file with ids s-1, s-2, ... */
export function writeSeeds(file: string, seeds: string[]): void {
  fs.writeFileSync(
    file,
    seeds.map((s, i) => JSON.stringify({ id: `s-${i + 1}`, instruction: s })).join('\n') + '\n',
  );
}
