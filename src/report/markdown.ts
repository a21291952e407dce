import type { Usage, UsageCell } from '../schemas/records';

/** Markdown helpers shared by the run report, the eval report and the dataset card. */

/** A table cell: pipes escaped, newlines flattened, long text cut. */
export function cell(value: string | number | null | undefined, max = 300): string {
  if (value === null || value === undefined) return '';
  const text = String(value).replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * One row per stage/role key of `usage`, sorted: the key, calls, prompt and completion tokens, then
 * the report's own columns (`more`).
 */
export function usageRows(
  usage: Usage,
  more: (key: string, cell: UsageCell) => (string | number)[],
): (string | number)[][] {
  return Object.entries(usage)
    .sort()
    .map(([k, u]) => [k, u.calls, u.promptTokens, u.completionTokens, ...more(k, u)]);
}

export function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  return [
    `| ${header.map((h) => cell(h)).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map((v) => cell(v)).join(' | ')} |`),
  ].join('\n');
}

export function percent(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(digits)}%`;
}

export function money(x: number): string {
  return x >= 100 ? `$${x.toFixed(0)}` : x >= 1 ? `$${x.toFixed(2)}` : `$${x.toFixed(4)}`;
}
