/**
 * Small hand-written SVG charts for the reports. Each chart is a standalone SVG document (with its
 * xmlns, explicit size and a white background) so the same string can be inlined in report.html
 * and saved as a .svg file that GitHub and Hugging Face render from report.md. No scripts, no
 * external fonts, no CSS files: what is drawn is all in the markup.
 */

export interface Series {
  name: string;
  values: number[];
  color?: string;
}

export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#9c755f',
];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const AXIS = '#555';
const GRID = '#e3e3e3';

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Cuts a label to `max` characters with an ellipsis; the full text stays in a <title> tooltip. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(1) : n.toFixed(3);
}

/** A "nice" axis maximum and tick step (1, 2, 2.5 or 5 times a power of ten). */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

function open(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="22" ${FONT} font-size="15" font-weight="bold" fill="#222">${esc(title)}</text>`,
  ];
}

function legend(series: { name: string; color: string }[], x: number, y: number): string[] {
  const out: string[] = [];
  let at = x;
  for (const s of series) {
    out.push(`<rect x="${at}" y="${y - 10}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${at + 16}" y="${y}" ${FONT} font-size="12" fill="#333">${esc(s.name)}</text>`);
    at += 28 + s.name.length * 7;
  }
  return out;
}

function colored(series: Series[]): (Series & { color: string })[] {
  return series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]! }));
}

function empty(width: number, title: string): string {
  return [
    ...open(width, 70, title),
    `<text x="12" y="52" ${FONT} font-size="13" fill="#777">no data</text>`,
    '</svg>',
  ].join('\n');
}

export interface BarChartOptions {
  title: string;
  categories: string[];
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** How values are printed on bars and axes. */
  format?: (n: number) => string;
}

/** Vertical grouped bars: categories along x, one bar per series in each group. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 300;
  if (!o.categories.length) return empty(width, o.title);
  const f = o.format ?? fmt;
  const series = colored(o.series);
  const left = 56;
  const right = 16;
  const top = series.length > 1 ? 58 : 40;
  const bottom = o.xLabel ? 58 : 40;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const { max, step } = niceScale(Math.max(0, ...series.flatMap((s) => s.values)));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const out = open(width, height, o.title);
  if (series.length > 1) out.push(...legend(series, left, 44));
  for (let v = 0; v <= max + 1e-9; v += step) {
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${GRID}"/>`,
    );
    out.push(
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" ${FONT} font-size="11" text-anchor="end" fill="${AXIS}">${esc(f(v))}</text>`,
    );
  }
  const group = plotW / o.categories.length;
  const barW = Math.max(2, Math.min(48, (group * 0.8) / series.length));
  const labelEvery = Math.ceil(o.categories.length / Math.max(1, Math.floor(plotW / 40)));
  o.categories.forEach((cat, ci) => {
    const gx = left + ci * group + (group - barW * series.length) / 2;
    series.forEach((s, si) => {
      const v = s.values[ci] ?? 0;
      const x = gx + si * barW;
      const h = (v / max) * plotH;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${esc(`${cat} - ${s.name}: ${f(v)}`)}</title></rect>`,
      );
      if (series.length === 1 && v > 0 && barW >= 14) {
        out.push(
          `<text x="${(x + barW / 2).toFixed(1)}" y="${(top + plotH - h - 3).toFixed(1)}" ${FONT} font-size="10" text-anchor="middle" fill="#333">${esc(f(v))}</text>`,
        );
      }
    });
    if (ci % labelEvery === 0) {
      out.push(
        `<text x="${(left + ci * group + group / 2).toFixed(1)}" y="${top + plotH + 16}" ${FONT} font-size="11" text-anchor="middle" fill="${AXIS}">${esc(clip(cat, Math.max(3, Math.floor(group / 6.5))))}</text>`,
      );
    }
  });
  out.push(
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="${AXIS}"/>`,
  );
  if (o.xLabel)
    out.push(
      `<text x="${left + plotW / 2}" y="${height - 12}" ${FONT} font-size="12" text-anchor="middle" fill="${AXIS}">${esc(o.xLabel)}</text>`,
    );
  if (o.yLabel)
    out.push(
      `<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" ${FONT} font-size="12" text-anchor="middle" fill="${AXIS}">${esc(o.yLabel)}</text>`,
    );
  out.push('</svg>');
  return out.join('\n');
}

/** Horizontal grouped bars: for long category names (use cases, skills, stage/role keys). */
export function hBarChart(o: BarChartOptions & { labelWidth?: number }): string {
  const width = o.width ?? 720;
  if (!o.categories.length) return empty(width, o.title);
  const f = o.format ?? fmt;
  const series = colored(o.series);
  const labelW = o.labelWidth ?? 220;
  const left = labelW + 12;
  const right = 60;
  const top = series.length > 1 ? 58 : 40;
  const barH = series.length > 1 ? 9 : 14;
  const rowH = barH * series.length + 8;
  const plotW = width - left - right;
  const height = o.height ?? top + rowH * o.categories.length + (o.xLabel ? 40 : 24);
  const { max, step } = niceScale(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (v: number) => left + (v / max) * plotW;
  const plotBottom = top + rowH * o.categories.length;
  const out = open(width, height, o.title);
  if (series.length > 1) out.push(...legend(series, left, 44));
  for (let v = 0; v <= max + 1e-9; v += step) {
    out.push(
      `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top}" y2="${plotBottom}" stroke="${GRID}"/>`,
    );
    out.push(
      `<text x="${x(v).toFixed(1)}" y="${plotBottom + 14}" ${FONT} font-size="11" text-anchor="middle" fill="${AXIS}">${esc(f(v))}</text>`,
    );
  }
  const maxChars = Math.floor(labelW / 6.4);
  o.categories.forEach((cat, ci) => {
    const ry = top + ci * rowH + 4;
    out.push(
      `<text x="${labelW}" y="${(ry + (barH * series.length) / 2 + 4).toFixed(1)}" ${FONT} font-size="12" text-anchor="end" fill="#333"><title>${esc(cat)}</title>${esc(clip(cat, maxChars))}</text>`,
    );
    series.forEach((s, si) => {
      const v = s.values[ci] ?? 0;
      const w = x(v) - left;
      const by = ry + si * barH;
      out.push(
        `<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${s.color}"><title>${esc(`${cat} - ${s.name}: ${f(v)}`)}</title></rect>`,
      );
      if (v > 0)
        out.push(
          `<text x="${(left + w + 4).toFixed(1)}" y="${by + barH - 2}" ${FONT} font-size="10" fill="#333">${esc(f(v))}</text>`,
        );
    });
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${plotBottom}" stroke="${AXIS}"/>`);
  if (o.xLabel)
    out.push(
      `<text x="${left + plotW / 2}" y="${height - 8}" ${FONT} font-size="12" text-anchor="middle" fill="${AXIS}">${esc(o.xLabel)}</text>`,
    );
  out.push('</svg>');
  return out.join('\n');
}

export interface StackedRow {
  label: string;
  parts: number[];
}

/**
 * 100% stacked horizontal bars, one row per label (the paper's win/tie/loss figure). Each segment
 * shows its share; the row total is printed at the right.
 */
export function stackedShareChart(o: {
  title: string;
  parts: { name: string; color: string }[];
  rows: StackedRow[];
  width?: number;
  labelWidth?: number;
}): string {
  const width = o.width ?? 720;
  if (!o.rows.length) return empty(width, o.title);
  const labelW = o.labelWidth ?? 160;
  const left = labelW + 12;
  const right = 56;
  const top = 58;
  const rowH = 28;
  const plotW = width - left - right;
  const height = top + rowH * o.rows.length + 28;
  const out = open(width, height, o.title);
  out.push(...legend(o.parts, left, 44));
  o.rows.forEach((row, ri) => {
    const total = row.parts.reduce((a, b) => a + b, 0);
    const ry = top + ri * rowH;
    out.push(
      `<text x="${labelW}" y="${ry + 15}" ${FONT} font-size="12" text-anchor="end" fill="#333"><title>${esc(row.label)}</title>${esc(clip(row.label, Math.floor(labelW / 6.4)))}</text>`,
    );
    let at = left;
    row.parts.forEach((v, pi) => {
      if (!total || !v) return;
      const w = (v / total) * plotW;
      const share = (100 * v) / total;
      out.push(
        `<rect x="${at.toFixed(1)}" y="${ry}" width="${w.toFixed(1)}" height="20" fill="${o.parts[pi]!.color}"><title>${esc(`${row.label} - ${o.parts[pi]!.name}: ${v} (${share.toFixed(1)}%)`)}</title></rect>`,
      );
      if (w > 34)
        out.push(
          `<text x="${(at + w / 2).toFixed(1)}" y="${ry + 14}" ${FONT} font-size="11" text-anchor="middle" fill="#fff">${share.toFixed(0)}%</text>`,
        );
      at += w;
    });
    out.push(
      `<text x="${width - right + 6}" y="${ry + 15}" ${FONT} font-size="11" fill="${AXIS}">n=${total}</text>`,
    );
  });
  out.push(
    `<text x="${left}" y="${height - 8}" ${FONT} font-size="11" fill="${AXIS}">share of judged instructions</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
