import fs from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import { Option } from 'commander';
import type { CommandSpec } from './command';
import { sharedOptions, type ConfigOption, type JsonOption } from './options';
import { loadConfig } from '../config/load';
import { evalKeys, instructionsSha256, loadInstructionSet } from '../activities/eval';
import { openStore } from '../store/open';
import { isS3Location, resolveLocation } from '../store/store';
import { checkBatchSpools, prefetchRunInputs } from './run';
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

export interface EvalOptions extends ConfigOption, JsonOption {
  instructions: string;
  out: string;
  evalId?: string;
  field?: string;
  categoryField?: string;
  skipInvalid?: boolean;
  /** false with --no-check */
  check: boolean;
  worker?: boolean;
}

export const evalCommand: CommandSpec<EvalOptions> = {
  name: 'eval',
  summary: 'Capacity Recovery Ratio of the target against the strong model on an instruction set',
  options(cmd) {
    cmd
      .addOption(
        new Option(
          '--instructions <file>',
          'held-out instructions (a path or s3://bucket/key): JSONL, JSON array, CSV or text (same formats ' +
            'as seeds); a "category" field (or --category-field NAME) gives CRR per category',
        ).makeOptionMandatory(),
      )
      .addOption(
        new Option(
          '--out <dir>',
          'where eval.jsonl, eval-report.json, eval-report.md and eval-crr.svg are written ' +
            '(a directory or s3://bucket/prefix)',
        ).makeOptionMandatory(),
      )
      .addOption(sharedOptions.config('codeclm.config.json or .yaml (roles: target, strong, judge)'))
      .option(
        '--eval-id <id>',
        'an id of your own; running again with the same id attaches to that evaluation',
      )
      .addOption(sharedOptions.field())
      .option('--category-field <name>', "the field holding each instruction's category")
      .addOption(sharedOptions.skipInvalid())
      .addOption(sharedOptions.noCheck())
      .addOption(sharedOptions.worker())
      .addOption(sharedOptions.json());
  },
  help: [
    'Protocol (docs/method.md section 7): both models answer; the judge scores both answers in both orders at',
    'temperature 0; a win needs a win in both orders, anything else is a tie; CRR = (target wins + ties) / judged.',
    'Without TEMPORAL_ADDRESS: starts the embedded dev server (state in .codeclm/) and a worker here.',
    'Without OPENAI_API_KEY, OPENAI_BASE_URL or --config: uses the offline LLM simulator (a banner says so).',
  ],
  run: evalMain,
};

export function newEvalId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `eval-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Validates the instruction file and config up front, so bad input exits 2 before anything starts.
 * An s3:// instruction file is fetched first (prefetchEvalInputs).
 */
export function prepareEvalInput(options: Omit<EvalOptions, 'check'>, evalId: string): EvalInput {
  // A path or s3://bucket/key; a directory or s3://bucket/prefix: only URLs travel, never credentials.
  const instructionsFile = resolveLocation(options.instructions);
  const outDir = resolveLocation(options.out);
  const config = loadConfig(options.config, process.env);
  const { field, categoryField } = options;
  const skipInvalid = !!options.skipInvalid;
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
  if (!isS3Location(outDir) && fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory())
    throw new InputError(`--out ${outDir} exists and is not a directory`);
  return { evalId, instructionsFile, outDir, field, categoryField, skipInvalid, config };
}

/**
 * `--instructions s3://...` fetched and `--out s3://...` tried with one request (a missing bucket,
 * endpoint or credentials exits 2 now), with this process's own AWS environment, as `run` does.
 */
export async function prefetchEvalInputs(options: Pick<EvalOptions, 'instructions' | 'out'>): Promise<void> {
  await prefetchRunInputs({ seeds: options.instructions, out: options.out });
}

/** An out dir (or prefix) holding an evaluation of another instruction set is refused: never mix results. */
export async function checkEvalOut(input: Pick<EvalInput, 'outDir' | 'instructionsFile'>): Promise<void> {
  const previous = await openStore(input.outDir).readJson<{ sha256?: string }>(evalKeys.info);
  if (previous?.sha256 && previous.sha256 !== instructionsSha256(input.instructionsFile)) {
    throw new InputError(
      `--out ${input.outDir} already holds an evaluation of a different instruction file; use a new --out directory`,
    );
  }
}

async function evalMain(options: EvalOptions): Promise<number> {
  const evalId = checkUserId(options.evalId ?? newEvalId(), 'eval-id', 'eval', longestEvalWorkflowId);
  await prefetchEvalInputs(options);
  const prepared = prepareEvalInput(options, evalId);
  await checkEvalOut(prepared);
  await checkBatchSpools(prepared.config);
  if (options.check) await preflight(prepared.config, 'eval', { hasConfigFile: !!options.config });
  const session = await openSession(prepared.config, !!options.config);
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
    if (session.embedded || options.worker) await session.startWorker();
    else
      process.stderr.write(
        `codeclm: waiting for a worker on ${session.target.address} to run evaluation ${evalId}\n`,
      );
    const result = await waitWithProgress(handle);
    printResult(result, !!options.json);
    return 0;
  } catch (err) {
    const gone = await session.serverGone();
    process.stderr.write(
      `codeclm eval: evaluation ${evalId} did not complete: ${gone ?? failureMessage(err)}\n`,
    );
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
