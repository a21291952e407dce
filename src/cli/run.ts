import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Option, type Command as Commander } from 'commander';
import type { CommandSpec } from './command';
import { sharedOptions, type ConfigOption, type JsonOption } from './options';
import { loadConfig } from '../config/load';
import { InputUnavailableError, loadSeeds, prefetchRemoteInputs } from '../seeds/load';
import { isTransientStoreError } from '../store/transient';
import { isS3Location, joinLocation, resolveLocation, type Store } from '../store/store';
import { openStore } from '../store/open';
import { runKeys } from '../store/runDir';
import { planFile } from '../plan/compare';
import type { ResolvedConfig } from '../schemas/config';
import type { RunInput, RunProgress, RunResult } from '../schemas/run';
import { codeclmRun, progressQuery } from '../workflows/pipeline';
import { connectClient, temporalTarget } from '../temporal/connection';
import { onShutdownSignal } from '../temporal/logging';
import { codeclmHome, embeddedPort } from './runtime';
import { lastLeaseActivity, liveLeases } from './serverLease';
import { checkUserId, openSession, startOrAttachWorkflow } from './session';
import { failureMessage } from '../util/failure';
import { temporalAnswers } from '../temporal/devServer';
import { ProgressReporter, describe } from './progress';
import { watchRetries } from './retries';
import { InputError } from '../util/errors';
import { checkRunIdLength, type RunIdCheck } from './ids';
import { preflight } from './check';
import { usesBatch } from '../llm/client';
import { planBeforeStart, plannedConfig, printPlan, writePlanForRun } from './plan';

/** The options of a run's input, shared with `schedule create`. */
export interface RunInputOptions extends ConfigOption {
  seeds: string;
  out: string;
  size?: number;
  field?: string;
  skipInvalid?: boolean;
  decontaminate?: string[];
  /** false with --no-check */
  check: boolean;
}

export interface RunOptions extends RunInputOptions, JsonOption {
  runId?: string;
  detach?: boolean;
  worker?: boolean;
  dryRun?: boolean;
  daemonChild?: boolean;
}

/** Declares the run-input options (`run` and `schedule create`). */
export function addRunInputOptions(cmd: Commander): void {
  cmd
    .addOption(sharedOptions.seeds())
    .addOption(
      new Option(
        '--out <dir>',
        'where dataset.jsonl, report.json and report.md are written: a directory, or s3://bucket/prefix ' +
          '(S3-compatible storage, configured by the AWS SDK env vars: AWS_ENDPOINT_URL_S3 or ' +
          'AWS_ENDPOINT_URL, AWS_REGION, the default credential chain)',
      ).makeOptionMandatory(),
    )
    .addOption(sharedOptions.config())
    .addOption(sharedOptions.size())
    .addOption(sharedOptions.field())
    .addOption(
      sharedOptions.skipInvalid('skip bad seed lines (each is reported) instead of refusing to start'),
    )
    .addOption(
      new Option(
        '--decontaminate <files...>',
        'benchmark files (any seed format): decoded instructions sharing a 13-word n-gram ' +
          '(method.decontaminate.ngram) with one of their items are removed and reported',
      ),
    )
    .addOption(sharedOptions.noCheck());
}

export const runCommand: CommandSpec<RunOptions> = {
  name: 'run',
  summary: 'generate a dataset from seed instructions (encode, decode, Self-Rubrics, Contrastive Filtering)',
  options(cmd) {
    addRunInputOptions(cmd);
    cmd
      .option('--run-id <id>', 'a run id of your own; running again with the same id attaches to that run')
      .option('--detach', 'print the run id and return; the run goes on')
      .addOption(sharedOptions.worker())
      .addOption(sharedOptions.json())
      .option(
        '--dry-run',
        'print the plan (`codeclm plan`: calls, tokens, cost, wall time) and start nothing',
      )
      // The background copy of a detached embedded run (see detachEmbedded).
      .addOption(new Option('--daemon-child').hideHelp());
  },
  help: [
    'Without TEMPORAL_ADDRESS: starts the embedded dev server (state in .codeclm/) and a worker here.',
    'Without OPENAI_API_KEY, OPENAI_BASE_URL or --config: uses the offline LLM simulator (a banner says so).',
  ],
  run: runMain,
};

/** Validates seeds and config up front so that bad input exits 2 before anything starts. */
export function prepareRunInput(
  options: RunInputOptions,
  runId: string,
  idCheck: RunIdCheck = { command: 'run', what: '--run-id' },
): RunInput {
  // A path, or an s3://bucket/key (fetched by prefetchRunInputs before this runs).
  const seedsFile = resolveLocation(options.seeds);
  // A directory, or s3://bucket/prefix (src/store): only the URL travels, never credentials.
  const outDir = resolveLocation(options.out);
  const config: ResolvedConfig = loadConfig(options.config, process.env, { size: options.size });
  const { field } = options;
  const skipInvalid = !!options.skipInvalid;
  const seeds = loadSeeds(seedsFile, { field, skipInvalid, maxSeedChars: config.limits.maxSeedChars });
  for (const w of seeds.warnings) process.stderr.write(`codeclm: warning: ${w}\n`);
  for (const s of seeds.skipped) process.stderr.write(`codeclm: skipped ${s.origin}: ${s.reason}\n`);
  if (seeds.seeds.length === 0) throw new InputError(`${seedsFile}: no usable seed instructions`);
  // Every workflow id the run derives must fit the cluster's id limit; say so now, not mid-run.
  checkRunIdLength(runId, seeds.seeds.length, config, idCheck);
  if (!isS3Location(outDir) && fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory())
    throw new InputError(`--out ${outDir} exists and is not a directory`);
  const decontaminate = benchmarkFiles(options.decontaminate);
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
 * `--decontaminate FILE...` (both `--decontaminate a b` and `--decontaminate a --decontaminate b`
 * work). Each file must load as a seed file (any format) with at least one item, else exit 2 naming it.
 */
export function benchmarkFiles(given: string[] | undefined): string[] {
  if (!given?.length) return [];
  const files = given.map((f) => resolveLocation(f));
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
 * environment) before the synchronous validation reads them. `--out s3://...`: one listing request
 * up front, so a missing bucket, endpoint or credentials exits 2 now instead of a run retrying.
 */
export async function prefetchRunInputs(
  options: Pick<RunInputOptions, 'seeds' | 'decontaminate' | 'out'>,
): Promise<void> {
  const values = [options.seeds, ...(options.decontaminate ?? [])];
  try {
    await prefetchRemoteInputs(values.filter((v) => isS3Location(v)));
  } catch (err) {
    // A store that may come back is not bad input: exit 1 with its message (InputUnavailableError).
    throw err instanceof InputError || err instanceof InputUnavailableError
      ? err
      : new InputError((err as Error).message);
  }
  if (isS3Location(options.out)) await checkS3Location(`--out ${options.out}`, options.out);
}

/**
 * Tries an s3:// location a run writes to (`--out`, a role's `batch.spool`) before anything starts:
 * a missing bucket, a wrong endpoint, missing credentials or permissions exit 2 now, a store that is
 * down or busy exits 1 (retry later), instead of the run's activities retrying. `name` says which
 * setting it is in the messages.
 */
async function checkS3Location(name: string, location: string): Promise<void> {
  const store = openStore(resolveLocation(location));
  const unavailable = (err: unknown) =>
    new InputUnavailableError(
      `${name}: the object store did not answer (${(err as Error).message}); it may be ` +
        'unreachable or busy: retry later',
    );
  try {
    // A prefix nothing is stored under: one request, whatever the location already holds.
    await store.list('.codeclm-access-check');
  } catch (err) {
    // As for the inputs: a store that is down or busy may come back (exit 1, retry later); a
    // missing bucket, a wrong endpoint or missing credentials are the user's to fix (exit 2).
    if (isTransientStoreError(err)) throw unavailable(err);
    throw new InputError(
      `${name}: cannot use this bucket (${(err as Error).message}); S3 is configured by ` +
        'AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION and the AWS credential chain',
    );
  }
  try {
    // Listing needs read access only, and a run writes and deletes objects: a read-only credential
    // passed the listing and failed the run's first write minutes later (exit 1). A tiny object,
    // written and deleted at once (deleting a key is idempotent, so concurrent checks are fine).
    await store.write(ACCESS_CHECK_KEY, '');
    await store.remove(ACCESS_CHECK_KEY);
  } catch (err) {
    if (isTransientStoreError(err)) throw unavailable(err);
    throw new InputError(
      `${name}: cannot write to this bucket (${(err as Error).message}); a run writes and ` +
        'deletes objects under the prefix (s3:PutObject, s3:DeleteObject): check the permissions of the ' +
        'credentials the AWS credential chain finds',
    );
  }
}

/**
 * The s3:// `batch.spool` of each role that sends calls through batches, tried as `--out` is: a
 * spool that cannot be used failed every batch-mode call in the workers, retried without end.
 */
export async function checkBatchSpools(config: Pick<ResolvedConfig, 'roles'>): Promise<void> {
  const spools = new Map<string, string>();
  for (const [role, cfg] of Object.entries(config.roles)) {
    const spool = cfg.batch?.spool;
    if (spool && isS3Location(spool) && usesBatch(cfg) && !spools.has(spool))
      spools.set(spool, `roles.${role}.batch.spool ${spool}`);
  }
  for (const [spool, name] of spools) await checkS3Location(name, spool);
}

/**
 * Refuses an out dir that holds another run, and marks it as run `runId`'s (`.work/run.json`): a
 * second run there took the first one's seed snapshot for its own seeds (whatever --seeds said) and
 * mixed their records in dataset.jsonl. A run holds its out dir once it has a seed snapshot; the run
 * is the one the marker names, or for an out dir written before runs were marked, its plan.json.
 * A marker without a snapshot (a run that never got started: a failed check, no server) does not
 * hold it.
 */
export async function claimRunOut(outDir: string, runId: string): Promise<void> {
  const store = openStore(outDir);
  if (!(await store.exists(runKeys.seedsInfo))) return store.writeJson(runKeys.runOwner, { runId });
  const holder = await markedRun(store);
  if (holder === undefined || holder === runId) return;
  throw new InputError(
    `--out ${outDir} holds run ${holder} (its seed snapshot, records and dataset); a second run there ` +
      `would mix the two: use a new --out, or --run-id ${holder} to attach to that run`,
  );
}

/** The run that holds `outDir` (see claimRunOut), if one does and says which. */
export async function runHoldingOut(outDir: string): Promise<string | undefined> {
  const store = openStore(outDir);
  return (await store.exists(runKeys.seedsInfo)) ? markedRun(store) : undefined;
}

/** The run an out dir's marker names, or for one written before runs were marked, its plan.json. */
async function markedRun(store: Store): Promise<string | undefined> {
  const marked = await store.readJson<{ runId?: string }>(runKeys.runOwner);
  if (marked?.runId) return marked.runId;
  return (await store.readJson<{ run_id?: string }>(planFile('')).catch(() => undefined))?.run_id;
}

/** The object `run`, `eval` and `schedule create` write and delete to try an `--out s3://` prefix. */
const ACCESS_CHECK_KEY = '.codeclm-access-check';

async function runMain(options: RunOptions): Promise<number> {
  const runId = checkUserId(options.runId ?? newRunId(), 'run-id', 'run');
  await prefetchRunInputs(options);
  const prepared = prepareRunInput(options, runId);
  if (options.dryRun) {
    const config = plannedConfig(prepared.config, !!options.config);
    printPlan(planBeforeStart(prepared.seedsFile, config, prepared, { quiet: true }), !!options.json);
    return 0;
  }
  const daemon = !!options.daemonChild;
  // A detached run's background copy was checked by the command that spawned it.
  if (!daemon) await checkBatchSpools(prepared.config);
  if (!daemon && options.check) await preflight(prepared.config, 'run', { hasConfigFile: !!options.config });
  if (!daemon) await claimRunOut(prepared.outDir, runId);
  if (options.detach && !temporalTarget().explicit && !daemon) return detachEmbedded(runId);
  const session = await openSession(prepared.config, !!options.config);
  const input = { ...prepared, config: session.config };
  let stopSignals = () => undefined as void;
  try {
    // The plan, made before the first call, is what the report compares the run with.
    await writePlanForRun(input);
    const handle = await startOrAttach(session.client, input);
    if (options.detach && !daemon) {
      process.stdout.write(options.json ? `${JSON.stringify({ run_id: runId })}\n` : `${runId}\n`);
      return 0;
    }
    if (session.embedded || options.worker) await session.startWorker();
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
    printResult(outcome, !!options.json);
    if (daemon && session.server) await lingerForControlCommands(session.client, interrupted);
    return 0;
  } catch (err) {
    const gone = await session.serverGone();
    process.stderr.write(`codeclm run: run ${runId} did not complete: ${gone ?? failureMessage(err)}\n`);
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
 * counted again from each command that uses it (src/cli/serverLease.ts; the session's close then
 * waits for the commands still attached), and for as long as any other workflow on it is running.
 */
async function lingerForControlCommands(client: Client, stop: Promise<unknown>): Promise<void> {
  // SIGTERM/Ctrl-C ends the linger (the session's close still waits for attached commands).
  let stopped = false;
  void stop.then(() => (stopped = true));
  const lingerSeconds = Number(process.env.CODECLM_DETACH_LINGER_SECONDS ?? 600);
  const lingerMs = lingerSeconds * 1000;
  const port = embeddedPort();
  process.stderr.write(
    `codeclm: the embedded Temporal server stays up ${lingerSeconds} s after the last command that ` +
      'uses it (CODECLM_DETACH_LINGER_SECONDS)\n',
  );
  let until = Date.now() + lingerMs;
  while (Date.now() < until && !stopped) {
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, until - Date.now()))));
    if (stopped) break;
    // Counted again from the last command that attached or finished, and never while one is attached.
    const lastUse = liveLeases(port).length > 0 ? Date.now() : lastLeaseActivity(port);
    until = Math.max(until, lastUse + lingerMs);
    if (Date.now() >= until) {
      const running = await client.workflow.count('ExecutionStatus = "Running"').catch(() => ({ count: 0 }));
      if (running.count > 0) until = Date.now() + 30_000;
    }
  }
}
