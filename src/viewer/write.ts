import fs from 'node:fs';
import path from 'node:path';
import { judgementSchema } from '../schemas/records';
import { viewerClientScript } from './client';
import { viewerCss } from './style';
import { addToFacets, emptyFacets, rowsOf, type ViewerFacets, type ViewerRow } from './rows';
import { viewerFile } from './store';

/** Rows per embedded JSON block: the page parses one block per tick, so it never freezes. */
export const ROWS_PER_BLOCK = 500;

/** JSON that is safe inside a <script> element: no `<` can close it or open a comment. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Judgement files sorted by record id (they sit in hash shards, so path order is not id order). */
function judgementFilesById(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ f, id: path.basename(f, '.json') }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(({ f }) => path.join(dir, f));
}

/**
 * Writes viewer.html: every judged iteration of every instruction (kept or not) from the judgement
 * files in `judgementsDir`, read one file at a time and written out in blocks of ROWS_PER_BLOCK, so
 * memory stays bounded by one block whatever the run's size. The page is self-contained (inline CSS
 * and script, nothing fetched); it parses the blocks after it has drawn, and renders one page of
 * rows at a time. Written to a temporary file and renamed, so a retried finalize is harmless.
 */
export function writeViewer(
  outDir: string,
  judgementsDir: string,
  info: { runId: string },
): { file: string; facets: ViewerFacets } {
  const file = viewerFile(outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const facets = emptyFacets();
  try {
    const title = `codeclm viewer: run ${info.runId}`;
    fs.writeSync(
      fd,
      `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
        `<meta name="viewport" content="width=device-width, initial-scale=1">` +
        `<title>${escHtml(title)}</title><style>${viewerCss}</style></head>\n<body>\n` +
        `<header><h1>${escHtml(title)}</h1><p id="summary" class="sub">loading…</p>\n` +
        `<form id="filters" onsubmit="return false">` +
        `<input id="f-q" type="search" placeholder="search instructions, answers, actions, ids" aria-label="search">` +
        `<select id="f-uc" aria-label="use case"></select><select id="f-sk" aria-label="skill"></select>` +
        `<select id="f-it" aria-label="iteration"></select><select id="f-src" aria-label="source"></select>` +
        `<select id="f-out" aria-label="outcome"></select><button id="f-reset" type="button">reset</button>` +
        `</form><p id="status" class="sub"></p></header>\n<main id="rows"></main>\n` +
        `<nav id="pager"></nav>\n`,
    );
    let block: ViewerRow[] = [];
    const flush = () => {
      if (block.length === 0) return;
      fs.writeSync(fd, `<script type="application/json" class="rows">${scriptJson(block)}</script>\n`);
      block = [];
    };
    for (const f of judgementFilesById(judgementsDir)) {
      const parsed = judgementSchema.safeParse(JSON.parse(fs.readFileSync(f, 'utf8')));
      if (!parsed.success) throw new Error(`${f}: not a judgement record: ${parsed.error.message}`);
      const rows = rowsOf(parsed.data);
      addToFacets(facets, rows);
      for (const row of rows) {
        block.push(row);
        if (block.length >= ROWS_PER_BLOCK) flush();
      }
    }
    flush();
    fs.writeSync(
      fd,
      `<script type="application/json" id="facets">${scriptJson(facets)}</script>\n` +
        `<script>${viewerClientScript}</script>\n</body></html>\n`,
    );
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return { file, facets };
}
