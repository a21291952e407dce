import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { flag, requireStr, str, type Command, type ParsedArgs } from './command';
import { loadConfig } from '../config/load';
import { evalPaths, loadInstructionSet } from '../activities/eval';
import { readJson } from '../store/files';
import {
  codeclmEval,
  evalProgressQuery,
  type EvalInput,
  type EvalProgress,
  type EvalResult,
} from '../workflows/eval';
import { checkUserId, openSession, startOrAttachWorkflow } from './session';
import { longestEvalWorkflowId } from '../workflows/ids';
import { failureMessage } from '../util/failure';
import { watchRetries } from './retries';
import { InputError } from '../util/errors';
import { preflight } from './check';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Capacity Recovery Ratio of the target against the strong model on an instruction set',
  usage:
    'eval --instructions FILE --out DIR [--config FILE] [--eval-id ID] [--field NAME] [--category-field NAME] [--skip-invalid] [--no-check] [--worker] [--json]',
  details: [
    '--instructions FILE   held-out instructions: JSONL, JSON array, CSV or text (same formats as seeds);',
    '                      a "category" field (or --category-field NAME) gives CRR per category',
    '--out DIR             where eval.jsonl, eval-report.json, eval-report.md and eval-crr.svg are written',
    '--config FILE         codeclm.config.json or .yaml (roles: target, strong, judge)',
    '--eval-id ID          an id of your own; running again with the same id attaches to that evaluation',
    '--field NAME          the instruction field, when detection picks the wrong one',
    '--skip-invalid        skip bad lines (each is reported) instead of refusing to start',
    '--no-check            skip the endpoint check (`codeclm check`) made before anything starts',
    '--worker              also run a worker in this process when TEMPORAL_ADDRESS is set',
    '--json                print the result as JSON on stdout',
    'Protocol (docs/method.md section 7): both models answer; the judge scores both answers in both orders at',
    'temperature 0; a win needs a win in both orders, anything else is a tie; CRR = (target wins + ties) / judged.',
    'Without TEMPORAL_ADDRESS: starts the embedded dev server (state in .codeclm/) and a worker here.',
    'Without OPENAI_API_KEY, OPENAI_BASE_URL or --config: uses the offline LLM simulator (a banner says so).',
  ],
  options: {
    instructions: { type: 'string' },
    out: { type: 'string' },
    config: { type: 'string' },
    'eval-id': { type: 'string' },
    field: { type: 'string' },
    'category-field': { type: 'string' },
    'skip-invalid': { type: 'boolean' },
    'no-check': { type: 'boolean' },
    worker: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  run: evalMain,
};

export function newEvalId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `eval-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Validates the instruction file and config up front, so bad input exits 2 before anything starts. */
export function prepareEvalInput(args: ParsedArgs, evalId: string): EvalInput {
  const instructionsFile = path.resolve(requireStr(args, 'instructions', evalCommand));
  const outDir = path.resolve(requireStr(args, 'out', evalCommand));
  const config = loadConfig(str(args, 'config'), process.env);
  const field = str(args, 'field');
  const categoryField = str(args, 'category-field');
  const skipInvalid = flag(args, 'skip-invalid');
  const set = loadInstructionSet(instructionsFile, {
    field,
    categoryField,
    skipInvalid,
    maxChars: config.limits.maxSeedChars,
  });
  for (const w of set.warnings) process.stderr.write(`codeclm: warning: ${w}\n`);
  for (const s of set.skipped) process.stderr.write(`codeclm: skipped ${s.origin}: ${s.reason}\n`);
  if (set.instructions.length === 0) throw new InputError(`${instructionsFile}: no usable instructions`);
  if (categoryField && set.categorised === 0) {
    throw new InputError(
      `--category-field ${categoryField}: no record of ${instructionsFile} has that field`,
    );
  }
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory())
    throw new InputError(`--out ${outDir} exists and is not a directory`);
  const previous = readJson<{ sha256?: string }>(evalPaths(outDir).info);
  if (previous?.sha256) {
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(instructionsFile)).digest('hex');
    if (previous.sha256 !== sha256) {
      throw new InputError(
        `--out ${outDir} already holds an evaluation of a different instruction file; use a new --out directory`,
      );
    }
  }
  return { evalId, instructionsFile, outDir, field, categoryField, skipInvalid, config };
}

async function evalMain(args: ParsedArgs): Promise<number> {
  const evalId = checkUserId(str(args, 'eval-id') ?? newEvalId(), 'eval-id', 'eval', longestEvalWorkflowId);
  const prepared = prepareEvalInput(args, evalId);
  if (!flag(args, 'no-check'))
    await preflight(prepared.config, 'eval', { hasConfigFile: !!str(args, 'config') });
  const session = await openSession(prepared.config, !!str(args, 'config'));
  const input = { ...prepared, config: session.config };
  try {
    const handle = await startOrAttachWorkflow(session.client, codeclmEval, {
      id: input.evalId,
      noun: 'evaluation',
      outDir: input.outDir,
      taskQueue: input.taskQueue,
      args: [input],
      memo: { outDir: input.outDir, instructionsFile: input.instructionsFile, kind: 'eval' },
    });
    if (session.embedded || flag(args, 'worker')) await session.startWorker();
    else
      process.stderr.write(
        `codeclm: waiting for a worker on ${session.target.address} to run evaluation ${evalId}\n`,
      );
    const result = await waitWithProgress(handle);
    printResult(result, flag(args, 'json'));
    return 0;
  } catch (err) {
    process.stderr.write(`codeclm eval: evaluation ${evalId} did not complete: ${failureMessage(err)}\n`);
    return 1;
  } finally {
    await session.close();
  }
}

export function describeEvalProgress(p: EvalProgress): string {
  const done = p.judged + p.failed;
  const crr = p.judged ? ` CRR so far ${(((p.target_wins + p.ties) / p.judged) * 100).toFixed(1)}%` : '';
  return `eval ${p.evalId} ${p.phase}: ${done}/${p.instructions} done (target ${p.target_wins}, tie ${p.ties}, strong ${p.strong_wins}, failed ${p.failed})${crr}`;
}

async function waitWithProgress(handle: WorkflowHandle<typeof codeclmEval>): Promise<EvalResult> {
  let lastLine = '';
  const tty = process.stderr.isTTY;
  const timer = setInterval(() => {
    handle.query(evalProgressQuery).then(
      (p) => {
        const line = describeEvalProgress(p);
        if (line === lastLine) return;
        lastLine = line;
        process.stderr.write(tty ? `\r\x1b[K${line}` : `codeclm: ${line}\n`);
      },
      () => undefined, // not queryable yet (no worker has picked it up): try again next tick
    );
  }, 1000);
  // Retrying activities (a provider outage, a 429 storm) as one line, not a log per attempt.
  const stopRetries = watchRetries(handle.client, handle.workflowId, (line) =>
    process.stderr.write(tty ? `\r\x1b[K${line}\n` : `codeclm: ${line}\n`),
  );
  try {
    return await handle.result();
  } finally {
    stopRetries();
    clearInterval(timer);
    if (tty && lastLine) process.stderr.write('\n');
  }
}

function printResult(result: EvalResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const o = result.crr.overall;
  const lines = [
    `evaluation ${result.evalId} completed in ${result.wallSeconds.toFixed(1)} s`,
    `  CRR ${o.crr_percent === null ? 'n/a' : `${o.crr_percent.toFixed(2)}%`}: target wins ${o.target_wins}, ties ${o.ties}, strong wins ${o.strong_wins} of ${o.total} judged` +
      (result.failed ? ` (${result.failed} failed: see the report)` : ''),
  ];
  for (const [category, c] of Object.entries(result.crr.by_category)) {
    lines.push(
      `    ${category}: ${c.crr_percent === null ? 'n/a' : `${c.crr_percent.toFixed(2)}%`} of ${c.total}`,
    );
  }
  lines.push(
    `  results: ${result.files.evalJsonl}`,
    `  report:  ${result.files.reportMd} (and eval-report.json)`,
    '',
  );
  process.stdout.write(lines.join('\n'));
}
