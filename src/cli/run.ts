import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { flag, intOpt, requireStr, str, type Command, type ParsedArgs } from './command';
import { loadConfig } from '../config/load';
import { loadSeeds, prefetchRemoteInputs } from '../seeds/load';
import { isS3Location, joinLocation, resolveLocation } from '../store/store';
import type { ResolvedConfig } from '../schemas/config';
import type { RunInput, RunProgress, RunResult } from '../schemas/run';
import { codeclmRun, progressQuery } from '../workflows/pipeline';
import { connectClient, temporalTarget } from '../temporal/connection';
import { onShutdownSignal } from '../temporal/logging';
import { codeclmHome, embeddedPort } from './runtime';
import { checkUserId, openSession, startOrAttachWorkflow } from './session';
import { failureMessage } from '../util/failure';
import { temporalAnswers } from '../temporal/devServer';
import { ProgressReporter, describe } from './progress';
import { watchRetries } from './retries';
import { InputError } from '../util/errors';
import { checkRunIdLength, type RunIdCheck } from './ids';
import { preflight } from './check';
import { planBeforeStart, plannedConfig, printPlan, writePlanForRun } from './plan';

export const runOptions = {
  seeds: { type: 'string' },
  out: { type: 'string' },
  config: { type: 'string' },
  size: { type: 'string' },
  field: { type: 'string' },
  'skip-invalid': { type: 'boolean' },
  'no-check': { type: 'boolean' },
  decontaminate: { type: 'string', multiple: true },
} as const;

export const runCommand: Command = {
  name: 'run',
  summary: 'generate a dataset from seed instructions (encode, decode, Self-Rubrics, Contrastive Filtering)',
  usage:
    'run --seeds FILE --out DIR [--config FILE] [--size N] [--run-id ID] [--detach] [--field NAME] [--skip-invalid] [--decontaminate FILE...] [--no-check] [--worker] [--json]',
  details: [
    '--seeds FILE      JSONL, JSON array, CSV or text; the instruction field is detected (or --field NAME);',
    '                  a path or an s3://bucket/key object',
    '--out DIR         where dataset.jsonl, report.json and report.md are written: a directory, or',
    '                  s3://bucket/prefix (S3-compatible storage, configured by the AWS SDK env vars:',
    '                  AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION, the default credential chain)',
    '--config FILE     codeclm.config.json or .yaml (roles, method parameters, limits)',
    '--size N          target number of kept pairs (overrides limits.size)',
    '--run-id ID       a run id of your own; running again with the same id attaches to that run',
    '--detach          print the run id and return; the run goes on',
    '--skip-invalid    skip bad seed lines (each is reported) instead of refusing to start',
    '--decontaminate FILE...  benchmark files (any seed format): decoded instructions sharing a 13-word',
    '                  n-gram (method.decontaminate.ngram) with one of their items are removed and reported',
    '--no-check        skip the endpoint check (`codeclm check`) made before anything starts',
    '--worker          also run a worker in this process when TEMPORAL_ADDRESS is set',
    '--json            print the result as JSON on stdout',
    '--dry-run         print the plan (`codeclm plan`: calls, tokens, cost, wall time) and start nothing',
    'Without TEMPORAL_ADDRESS: starts the embedded dev server (state in .codeclm/) and a worker here.',
    'Without OPENAI_API_KEY, OPENAI_BASE_URL or --config: uses the offline LLM simulator (a banner says so).',
  ],
  options: {
    ...runOptions,
    'run-id': { type: 'string' },
    detach: { type: 'boolean' },
    worker: { type: 'boolean' },
    json: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'daemon-child': { type: 'boolean' },
  },
  run: runMain,
};

/** Validates seeds and config up front so that bad input exits 2 before anything starts. */
export function prepareRunInput(
  args: ParsedArgs,
  command: Command,
  runId: string,
  idCheck: RunIdCheck = { command: command.name, what: '--run-id' },
): RunInput {
  // A path, or an s3://bucket/key (fetched by prefetchRunInputs before this runs).
  const seedsFile = resolveLocation(requireStr(args, 'seeds', command));
  // A directory, or s3://bucket/prefix (src/store): only the URL travels, never credentials.
  const outDir = resolveLocation(requireStr(args, 'out', command));
  const size = intOpt(args, 'size', command);
  const configFile = str(args, 'config');
  const config: ResolvedConfig = loadConfig(configFile, process.env, { size });
  const field = str(args, 'field');
  const skipInvalid = flag(args, 'skip-invalid');
  const seeds = loadSeeds(seedsFile, { field, skipInvalid, maxSeedChars: config.limits.maxSeedChars });
  for (const w of seeds.warnings) process.stderr.write(`codeclm: warning: ${w}\n`);
  for (const s of seeds.skipped) process.stderr.write(`codeclm: skipped ${s.origin}: ${s.reason}\n`);
  if (seeds.seeds.length === 0) throw new InputError(`${seedsFile}: no usable seed instructions`);
  // Every workflow id the run derives must fit the cluster's id limit; say so now, not mid-run.
  checkRunIdLength(runId, seeds.seeds.length, config, idCheck);
  if (!isS3Location(outDir) && fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory())
    throw new InputError(`--out ${outDir} exists and is not a directory`);
  const decontaminate = benchmarkFiles(args, command);
  return {
    runId,
    seedsFile,
    outDir,
    field,
    skipInvalid,
    config,
    ...(decontaminate.length ? { decontaminate } : {}),
  };
}

/**
 * `--decontaminate FILE...`: the flag's values, plus the words after it that are no option (so both
 * `--decontaminate a b` and `--decontaminate a --decontaminate b` work). Each file must load as a
 * seed file (any format) with at least one item, else exit 2 naming it.
 */
export function benchmarkFiles(args: ParsedArgs, command: Command): string[] {
  const given = args.values.decontaminate;
  if (!Array.isArray(given) || given.length === 0) return [];
  // `schedule create ID` has two positionals of its own.
  const own = command.name === 'schedule' ? 2 : 0;
  const files = [...given, ...args.positionals.slice(own)].map((f) => resolveLocation(f));
  for (const file of files) {
    const loaded = loadSeeds(file, { skipInvalid: true, maxSeedChars: Number.MAX_SAFE_INTEGER });
    if (loaded.seeds.length === 0)
      throw new InputError(`--decontaminate ${file}: no benchmark items could be read from it`);
  }
  return [...new Set(files)];
}

export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `run-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * `--seeds s3://...` and `--decontaminate s3://...`: fetched (with this process's own AWS
 * environment) before the synchronous validation reads them.
 */
export async function prefetchRunInputs(args: ParsedArgs): Promise<void> {
  const given = args.values.decontaminate;
  const values = [args.values.seeds, ...(Array.isArray(given) ? given : []), ...args.positionals];
  try {
    await prefetchRemoteInputs(values.filter((v): v is string => typeof v === 'string' && isS3Location(v)));
  } catch (err) {
    throw err instanceof InputError ? err : new InputError((err as Error).message);
  }
}

async function runMain(args: ParsedArgs): Promise<number> {
  const runId = checkUserId(str(args, 'run-id') ?? newRunId(), 'run-id', 'run');
  await prefetchRunInputs(args);
  const prepared = prepareRunInput(args, runCommand, runId);
  if (flag(args, 'dry-run')) {
    const config = plannedConfig(prepared.config, !!str(args, 'config'));
    printPlan(planBeforeStart(prepared.seedsFile, config, prepared, { quiet: true }), flag(args, 'json'));
    return 0;
  }
  const daemon = flag(args, 'daemon-child');
  // A detached run's background copy was checked by the command that spawned it.
  if (!daemon && !flag(args, 'no-check'))
    await preflight(prepared.config, 'run', { hasConfigFile: !!str(args, 'config') });
  if (flag(args, 'detach') && !temporalTarget().explicit && !daemon) return detachEmbedded(runId);
  const session = await openSession(prepared.config, !!str(args, 'config'));
  const input = { ...prepared, config: session.config };
  let stopSignals = () => undefined as void;
  try {
    // The plan, made before the first call, is what the report compares the run with.
    await writePlanForRun(input);
    const handle = await startOrAttach(session.client, input);
    if (flag(args, 'detach') && !daemon) {
      process.stdout.write(flag(args, 'json') ? `${JSON.stringify({ run_id: runId })}\n` : `${runId}\n`);
      return 0;
    }
    if (session.embedded || flag(args, 'worker')) await session.startWorker();
    // Ctrl-C stops waiting (and this process's worker, gracefully); the run itself is durable.
    const interrupted = new Promise<'interrupted'>((resolve) => {
      stopSignals = onShutdownSignal(() => resolve('interrupted'));
    });
    const outcome = await Promise.race([waitWithProgress(session.client, handle), interrupted]);
    if (outcome === 'interrupted') {
      process.stderr.write(
        `codeclm: interrupted. Run ${runId} is kept by Temporal; run the same command with --run-id ${runId} to attach again.\n`,
      );
      return 130;
    }
    printResult(outcome, flag(args, 'json'));
    if (daemon && session.server) await lingerForControlCommands(session.client);
    return 0;
  } catch (err) {
    process.stderr.write(`codeclm run: run ${runId} did not complete: ${failureMessage(err)}\n`);
    return 1;
  } finally {
    stopSignals();
    await session.close();
  }
}

/** Starts the run, or attaches to the existing one with the same id (never a second run). */
export function startOrAttach(client: Client, input: RunInput): Promise<WorkflowHandle<typeof codeclmRun>> {
  return startOrAttachWorkflow(client, codeclmRun, {
    id: input.runId,
    noun: 'run',
    outDir: input.outDir,
    taskQueue: input.taskQueue,
    args: [input],
    memo: { outDir: input.outDir, seedsFile: input.seedsFile },
  });
}

export async function waitWithProgress(
  client: Client,
  handle: WorkflowHandle<typeof codeclmRun>,
): Promise<RunResult> {
  const reporter = new ProgressReporter();
  let last: RunProgress | undefined;
  let finished = false;
  // Retrying activities (a provider outage, a 429 storm) as one progress line, not a log per attempt.
  const stopRetries = watchRetries(client.workflow, handle.workflowId, (line) => reporter.note(line));
  // One query at a time, each with a short deadline, so ending the wait never leaves a call behind.
  const poll = (async () => {
    while (!finished) {
      try {
        last = await client.withDeadline(Date.now() + 2000, () => handle.query(progressQuery));
        reporter.update(last);
      } catch {
        // Not queryable yet (no worker has picked the run up): try again on the next tick.
      }
      for (let waited = 0; waited < 1000 && !finished; waited += 100)
        await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return await handle.result();
  } finally {
    finished = true;
    stopRetries();
    await poll;
    reporter.done();
    if (last) process.stderr.write(`codeclm: ${describe(last)}\n`);
  }
}

function printResult(result: RunResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const c = result.counters;
  process.stdout.write(
    [
      `run ${result.runId} completed in ${result.wallSeconds.toFixed(1)} s`,
      `  kept ${c.kept} pairs (dropped ${c.dropped}, failed ${c.failed}) from ${c.seeds} seeds`,
      `  dataset: ${result.dataset}`,
      `  report:  ${joinLocation(result.outDir, 'report.md')} (and report.json)`,
      '',
    ].join('\n'),
  );
}

/**
 * `--detach` without TEMPORAL_ADDRESS: the embedded server and worker must outlive this command, so
 * a background copy of the same command runs them until the run ends (log under .codeclm/runs/).
 */
async function detachEmbedded(runId: string): Promise<number> {
  const logDir = path.join(codeclmHome(), 'runs');
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${runId}.log`);
  const out = fs.openSync(logFile, 'a');
  const argv = process.argv.slice(2).filter((a) => a !== '--detach');
  if (!argv.includes('--run-id')) argv.push('--run-id', runId);
  const child = spawn(process.execPath, [process.argv[1]!, ...argv, '--daemon-child'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  child.unref();
  fs.closeSync(out);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  // Return only once the run exists, so `status RUN_ID` right after works.
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited !== undefined && exited !== 0) {
      throw new Error(`the background run exited with code ${exited}; see ${logFile}:\n${tail(logFile)}`);
    }
    if (await runExists(runId)) break;
    if (Date.now() > deadline)
      throw new Error(`the background run did not start within 120 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  process.stderr.write(
    `codeclm: run ${runId} continues in the background (pid ${child.pid}, log ${logFile})\n`,
  );
  process.stdout.write(`${runId}\n`);
  return 0;
}

function tail(file: string): string {
  return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
}

async function runExists(runId: string): Promise<boolean> {
  const address = `127.0.0.1:${embeddedPort()}`;
  if (!(await temporalAnswers(address, 500))) return false;
  const client = await connectClient({ ...temporalTarget(), address });
  try {
    await client.workflow.getHandle(runId).describe();
    return true;
  } catch {
    return false;
  } finally {
    await client.connection.close();
  }
}

/**
 * A detached embedded run owns its dev server. After the run ends the server stays up a while
 * (CODECLM_DETACH_LINGER_SECONDS, default 600) so that `status`, `wait` and `export` still answer,
 * and for as long as any other workflow on it is still running.
 */
async function lingerForControlCommands(client: Client): Promise<void> {
  const lingerMs = Number(process.env.CODECLM_DETACH_LINGER_SECONDS ?? 600) * 1000;
  let until = Date.now() + lingerMs;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(0, until - Date.now()))));
    if (Date.now() >= until) {
      const running = await client.workflow.count('ExecutionStatus = "Running"').catch(() => ({ count: 0 }));
      if (running.count > 0) until = Date.now() + 30_000;
    }
  }
}
