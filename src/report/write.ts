import { openStore } from '../store/open';
import type { Store } from '../store/store';
import { renderReportMarkdown, type ChartLinks, type Report } from './build';
import { renderDatasetCard } from './card';
import { reportCharts } from './charts';
import { renderReportHtml } from './html';

/** Marks a README.md as codeclm's own, so a user's README in the out dir is never overwritten. */
export const CARD_MARKER = '<!-- codeclm dataset card: regenerated at the end of every run -->';

export interface RunOutputFiles {
  reportJson: string;
  reportMd: string;
  reportHtml: string;
  charts: string[];
  /** undefined when an existing README.md that codeclm did not write was left alone. */
  card?: string;
}

/**
 * Writes a run's human outputs next to dataset.jsonl: report.json, report.md (with its charts as
 * charts/*.svg), the self-contained report.html and the dataset card README.md, in the run's store
 * (`out`: an out dir or s3:// location, or its Store). Each file is written whole (atomically), so
 * the activity can be retried at any point. The returned names are paths or s3:// URLs.
 */
export async function writeRunOutputs(out: string | Store, report: Report): Promise<RunOutputFiles> {
  const store = typeof out === 'string' ? openStore(out) : out;
  const charts = reportCharts(report);
  const links: ChartLinks = {};
  const chartFiles: string[] = [];
  for (const chart of charts) {
    const key = `charts/${chart.file}`;
    await store.write(key, `${chart.svg}\n`);
    links[chart.key] = key;
    chartFiles.push(store.where(key));
  }
  const files: RunOutputFiles = {
    reportJson: store.where('report.json'),
    reportMd: store.where('report.md'),
    reportHtml: store.where('report.html'),
    charts: chartFiles,
  };
  await store.writeJson('report.json', report);
  await store.write('report.md', renderReportMarkdown(report, links));
  await store.write('report.html', renderReportHtml(report, charts));
  const existing = await store.read('README.md');
  if (existing === undefined || existing.includes(CARD_MARKER)) {
    const text = renderDatasetCard(report);
    // The marker goes right after the YAML header: the Hub needs the header first.
    const end = text.indexOf('\n---\n', 4) + 5;
    await store.write('README.md', `${text.slice(0, end)}${CARD_MARKER}\n${text.slice(end)}`);
    files.card = store.where('README.md');
  }
  return files;
}
