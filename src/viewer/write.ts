import path from 'node:path';
import { openStore } from '../store/open';
import type { Store } from '../store/store';
import { judgementSchema } from '../schemas/records';
import { viewerClientScript } from './client';
import { viewerCss } from './style';
import { addToFacets, emptyFacets, rowsOf, type ViewerFacets, type ViewerRow } from './rows';
import { judgementsDir, viewerFile } from './store';

/** Rows per embedded JSON block: the page parses one block per tick, so it never freezes. */
export const ROWS_PER_BLOCK = 500;

/** JSON that is safe inside a <script> element: no `<` can close it or open a comment. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Judgement keys sorted by record id (they sit in hash shards, so key order is not id order). */
async function judgementKeysById(store: Store): Promise<string[]> {
  return (await store.list(judgementsDir('')))
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ f, id: path.posix.basename(f, '.json') }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(({ f }) => f);
}

/**
 * Writes viewer.html: every judged iteration of every instruction (kept or not) from the judgement
 * files of the run's store (`out`: an out dir, an s3:// location or its Store), read one at a time
 * and written out in blocks of ROWS_PER_BLOCK, so memory stays bounded by one block whatever the
 * run's size. The page is self-contained (inline CSS and script, nothing fetched); it parses the
 * blocks after it has drawn, and renders one page of rows at a time. Streamed to a temporary file
 * (or a multipart upload) that lands whole, so a retried finalize is harmless.
 */
export async function writeViewer(
  out: string | Store,
  info: { runId: string },
): Promise<{ file: string; facets: ViewerFacets }> {
  const store = typeof out === 'string' ? openStore(out) : out;
  const facets = emptyFacets();
  const keys = await judgementKeysById(store);
  async function* page(): AsyncGenerator<string> {
    const title = `codeclm viewer: run ${info.runId}`;
    yield (
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
      `<nav id="pager"></nav>\n`
    );
    let block: ViewerRow[] = [];
    const flush = () => {
      const html = `<script type="application/json" class="rows">${scriptJson(block)}</script>\n`;
      block = [];
      return html;
    };
    for (const key of keys) {
      const text = await store.read(key);
      const parsed = judgementSchema.safeParse(text === undefined ? undefined : JSON.parse(text));
      if (!parsed.success)
        throw new Error(`${store.where(key)}: not a judgement record: ${parsed.error.message}`);
      const rows = rowsOf(parsed.data);
      addToFacets(facets, rows);
      for (const row of rows) {
        block.push(row);
        if (block.length >= ROWS_PER_BLOCK) yield flush();
      }
    }
    if (block.length) yield flush();
    yield (
      `<script type="application/json" id="facets">${scriptJson(facets)}</script>\n` +
      `<script>${viewerClientScript}</script>\n</body></html>\n`
    );
  }
  await store.writeStream(viewerFile(''), page());
  return { file: store.where(viewerFile('')), facets };
}
