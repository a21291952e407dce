import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../store/files';
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
 * charts/*.svg), the self-contained report.html and the dataset card README.md. Each file is written
 * atomically, so the activity can be retried at any point.
 */
export function writeRunOutputs(outDir: string, report: Report): RunOutputFiles {
  const charts = reportCharts(report);
  const links: ChartLinks = {};
  const chartFiles: string[] = [];
  for (const chart of charts) {
    const file = path.join(outDir, 'charts', chart.file);
    writeFileAtomic(file, `${chart.svg}\n`);
    links[chart.key] = `charts/${chart.file}`;
    chartFiles.push(file);
  }
  const files: RunOutputFiles = {
    reportJson: path.join(outDir, 'report.json'),
    reportMd: path.join(outDir, 'report.md'),
    reportHtml: path.join(outDir, 'report.html'),
    charts: chartFiles,
  };
  writeJsonAtomic(files.reportJson, report);
  writeFileAtomic(files.reportMd, renderReportMarkdown(report, links));
  writeFileAtomic(files.reportHtml, renderReportHtml(report, charts));
  const card = path.join(outDir, 'README.md');
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(card, 'utf8');
  } catch {
    existing = undefined;
  }
  if (existing === undefined || existing.includes(CARD_MARKER)) {
    const text = renderDatasetCard(report);
    // The marker goes right after the YAML header: the Hub needs the header first.
    const end = text.indexOf('\n---\n', 4) + 5;
    writeFileAtomic(card, `${text.slice(0, end)}${CARD_MARKER}\n${text.slice(end)}`);
    files.card = card;
  }
  return files;
}
