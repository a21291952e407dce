import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { Option, type Command as Commander } from 'commander';
import { choiceOption, intOption, type CommandSpec } from './command';
import { sharedOptions, type ConfigOption, type JsonOption } from './options';
import { controlClient } from './runtime';
import type { RunProgress, RunResult, RunState } from '../schemas/run';
import { usageTotals, type DatasetRecord, type Usage } from '../schemas/records';
import { dialectLines } from '../report/dialects';
import { computeCost, costSplitLine, type Cost } from '../report/cost';
import { money } from '../report/markdown';
import { progressQuery, pauseSignal, resumeSignal, type codeclmRun } from '../workflows/pipeline';
import { failureMessage } from '../util/failure';
import { runKeys } from '../store/runDir';
import { openStore, splitObjectUrl } from '../store/open';
import { isS3Location, resolveLocation } from '../store/store';
import { InputError } from '../util/errors';
import { keptRecords } from '../activities/sink';
import { writeFileAtomic } from '../store/files';
import { createWorker } from '../worker';
import { loadConfig } from '../config/load';
import { roleNames, type ResolvedConfig, type RoleName } from '../schemas/config';
import { connectWorker, temporalTarget } from '../temporal/connection';
import { embeddedPort } from './runtime';
import { onShutdownSignal } from '../temporal/logging';
import { pendingRetries, retryLine, type RetrySummary } from './retries';
import { batchLines, runBatches } from '../batch/status';
import type { BatcherView } from '../batch/protocol';

/** The commands that talk to an existing run: status, wait, pause, resume, cancel, export, worker. */

async function withRun<T>(
  runId: string,
  fn: (h: WorkflowHandle<typeof codeclmRun>, c: Client) => Promise<T>,
): Promise<T> {
  const client = await controlClient();
  try {
    const handle = client.workflow.getHandle<typeof codeclmRun>(runId);
    try {
      await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new Error(`no run "${runId}" on this Temporal server`);
      throw err;
    }
    return await fn(handle, client);
  } finally {
    await client.connection.close();
  }
}

const STATE_OF: Record<string, RunState> = {
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'failed',
  TIMED_OUT: 'failed',
  CONTINUED_AS_NEW: 'running',
};

export interface StatusView {
  run_id: string;
  state: RunState;
  phase?: string;
  paused_reason?: string;
  out_dir?: string;
  counters?: Record<string, unknown>;
  error?: string;
  /** Running runs: activities retrying now, per stage (src/cli/retries.ts). */
  retries?: RetrySummary;
  /** Running runs in batch mode: each role's batcher and its open batches (src/batch/status.ts). */
  batches?: BatcherView[];
  /**
   * Cost per stage and role, online and batch (src/report/cost.ts): a running run's from its usage
   * and the prices in its config (the progress query), an ended one's from its report.json.
   */
  cost?: Cost | null;
}

interface ReportJson {
  counts: RunProgress['counters'];
  usage: { per_stage_role: RunProgress['usage']; cost?: Cost | null };
}

async function readReport(outDir: string | undefined): Promise<ReportJson | undefined> {
  if (!outDir) return undefined;
  return openStore(outDir)
    .readJson<ReportJson>(runKeys.reportJson)
    .catch(() => undefined);
}

export async function runStatus(handle: WorkflowHandle<typeof codeclmRun>): Promise<StatusView> {
  const desc = await handle.describe();
  const state = STATE_OF[desc.status.name] ?? 'failed';
  const outDir = desc.memo?.outDir as string | undefined;
  let progress: (Pick<RunProgress, 'counters' | 'usage'> & Partial<RunProgress>) | undefined;
  let error: string | undefined;
  let cost: Cost | null | undefined;
  if (state === 'running') {
    const p = await handle.query(progressQuery).catch(() => undefined);
    progress = p;
    if (p?.prices) cost = computeCost(p.usage, p.prices);
  } else if (state === 'completed') {
    const result: RunResult = await handle.result();
    progress = { counters: result.counters, usage: result.usage, phase: 'done' };
    cost = (await readReport(outDir ?? result.outDir))?.usage.cost;
  } else {
    await handle.result().catch((err: unknown) => (error = failureMessage(err)));
    const report = await readReport(outDir);
    if (report) progress = { counters: report.counts, usage: report.usage.per_stage_role };
    cost = report?.usage.cost;
  }
  const view: StatusView = {
    run_id: handle.workflowId,
    state: progress?.state === 'paused' ? 'paused' : state,
    out_dir: outDir,
    error,
  };
  if (cost !== undefined) view.cost = cost;
  if (progress) {
    const c = progress.counters;
    const t = usageTotals(progress.usage);
    view.phase = progress.phase;
    view.paused_reason = progress.pausedReason;
    view.counters = {
      seeds: c.seeds,
      encoded: c.encoded,
      pool: c.pool,
      instructions: c.instructions,
      kept: c.kept,
      dropped: c.dropped,
      failed: c.failed + c.encodeFailed,
      llm_calls: t.calls,
      tokens: { prompt: t.promptTokens, completion: t.completionTokens },
      per_stage: progress.usage,
    };
    // What a run left: instructions decoded but never started, and (cancelled) left in flight.
    if (c.notStarted) view.counters.not_started = c.notStarted;
    if (c.leftInFlight) view.counters.left_in_flight = c.leftInFlight;
    // Removed after decode (src/quality): kept + dropped + failed + removed = instructions.
    if (c.duplicatesRemoved) view.counters.duplicates_removed = c.duplicatesRemoved;
    if (c.nearDuplicatesRemoved) view.counters.near_duplicates_removed = c.nearDuplicatesRemoved;
    if (c.contaminatedRemoved) view.counters.contaminated_removed = c.contaminatedRemoved;
  }
  if (state === 'running')
    view.retries = await pendingRetries(handle.client, handle.workflowId).catch(() => undefined);
  if (state === 'running') view.batches = await runBatches(handle.client, handle.workflowId);
  return view;
}

const RUN_ID = '<RUN_ID>';
const jsonOnly = (cmd: Commander) => void cmd.addOption(sharedOptions.json());

export const statusCommand: CommandSpec<JsonOption> = {
  name: 'status',
  summary: 'state and counters of a run',
  args: RUN_ID,
  options: jsonOnly,
  async run(options, [runId]) {
    const view = await withRun(runId!, (h) => runStatus(h));
    process.stdout.write(options.json ? `${JSON.stringify(view)}\n` : `${statusLines(view).join('\n')}\n`);
  },
};

/** `codeclm status` as text: state, counters, usage and cost per stage and role, retries, batches. */
export function statusLines(view: StatusView): string[] {
  const lines = [
    `run ${view.run_id}: ${view.state}${view.paused_reason ? ` (${view.paused_reason})` : ''}${view.phase ? `, phase ${view.phase}` : ''}`,
  ];
  if (view.out_dir) lines.push(`  out: ${view.out_dir}`);
  if (view.error) lines.push(`  error: ${view.error}`);
  const retrying = view.retries && retryLine(view.retries);
  if (retrying) {
    lines.push(`  ${retrying}`);
    for (const [stage, r] of Object.entries(view.retries!.per_stage).sort())
      lines.push(
        `    ${stage.padEnd(16)} ${r.retrying} retrying, attempt up to ${r.max_attempt}` +
          (r.last_error ? `, last error: ${r.last_error}` : ''),
      );
  }
  if (view.counters) {
    const { per_stage, tokens, ...counts } = view.counters as {
      per_stage: Usage;
      tokens: { prompt: number; completion: number };
    };
    lines.push(
      `  ${Object.entries(counts)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')}`,
    );
    lines.push(`  tokens: ${tokens.prompt} prompt, ${tokens.completion} completion`);
    for (const [k, u] of Object.entries(per_stage).sort())
      lines.push(
        `    ${k.padEnd(16)} ${u.calls} calls${u.batchCalls ? ` (${u.batchCalls} in batches)` : ''}, ${u.promptTokens}+${u.completionTokens} tokens${stageCost(view.cost, k)}`,
      );
    const total = view.cost && costLine(view.cost);
    if (total) lines.push(`  ${total}`);
    for (const line of dialectLines(per_stage)) lines.push(`  ${line}`);
  }
  for (const line of batchLines(view.batches ?? [])) lines.push(`  ${line}`);
  return lines;
}

/** A stage/role's cost after its usage: `, $0.0120 (batch $0.0040)`, or nothing without prices. */
function stageCost(cost: Cost | null | undefined, key: string): string {
  const usd = cost?.per_stage_role_usd[key];
  if (usd === undefined) return '';
  // (Reports from before batch mode have no per_stage_role_batch_usd.)
  const batch = (cost!.per_stage_role_batch_usd as Cost['per_stage_role_batch_usd'] | undefined)?.[key];
  return `, ${money(usd)}${batch !== undefined ? ` (batch ${money(batch)})` : ''}`;
}

/** The run's cost: online and batch parts and the all-online price when batches were used. */
function costLine(cost: Cost): string {
  const unpriced = cost.unpriced_roles.length ? ` (no price for: ${cost.unpriced_roles.join(', ')})` : '';
  return `${costSplitLine(cost, money) ?? `cost ${money(cost.total_usd)}`}${unpriced}`;
}

export const waitCommand: CommandSpec<JsonOption> = {
  name: 'wait',
  summary: 'block until a run ends; exit 0 only if it completed',
  args: RUN_ID,
  options: jsonOnly,
  async run(options, [runId]) {
    return withRun(runId!, async (handle) => {
      try {
        const result = await handle.result();
        process.stdout.write(
          options.json
            ? `${JSON.stringify(result)}\n`
            : `run ${result.runId} completed: ${result.counters.kept} pairs in ${result.dataset}\n`,
        );
        return 0;
      } catch (err) {
        const view = await runStatus(handle);
        process.stderr.write(`run ${handle.workflowId} ended ${view.state}: ${failureMessage(err)}\n`);
        return 1;
      }
    });
  },
};

interface BudgetOptions {
  budgetTokens?: number;
  budgetCalls?: number;
}

function signalCommand(name: 'pause' | 'resume' | 'cancel', summary: string): CommandSpec<BudgetOptions> {
  const resume = name === 'resume';
  return {
    name,
    summary,
    args: RUN_ID,
    options: resume
      ? (cmd) =>
          void cmd
            .addOption(
              intOption(
                '--budget-tokens <n>',
                'new token budget for the run (a run paused by its budget needs it raised)',
              ),
            )
            .addOption(intOption('--budget-calls <n>', 'new LLM-call budget for the run'))
      : undefined,
    async run(options, [runId]) {
      const budget = resume
        ? { budgetTokens: options.budgetTokens, budgetCalls: options.budgetCalls }
        : undefined;
      await withRun(runId!, async (handle) => {
        const view = await runStatus(handle);
        if (view.state !== 'running' && view.state !== 'paused')
          throw new Error(`run ${handle.workflowId} has already ended (${view.state})`);
        if (name === 'pause') await handle.signal(pauseSignal, 'paused by user');
        else if (name === 'resume') await handle.signal(resumeSignal, budget);
        else await handle.cancel();
      });
      const raised =
        budget && (budget.budgetTokens ?? budget.budgetCalls) !== undefined
          ? ` (budget: ${[budget.budgetTokens !== undefined ? `${budget.budgetTokens} tokens` : '', budget.budgetCalls !== undefined ? `${budget.budgetCalls} calls` : ''].filter(Boolean).join(', ')})`
          : '';
      process.stdout.write(
        `${name === 'cancel' ? 'cancellation requested' : `${name}d`}: ${runId}${raised}\n`,
      );
    },
  };
}

export const pauseCommand = signalCommand(
  'pause',
  'stop starting new work in a run (work in flight finishes)',
);
export const resumeCommand = signalCommand('resume', 'resume a paused run');
export const cancelCommand = signalCommand('cancel', 'cancel a run; pairs already kept are written out');

const formats = {
  openai: (r: DatasetRecord) => ({
    messages: [
      { role: 'user', content: r.instruction },
      { role: 'assistant', content: r.response },
    ],
  }),
  alpaca: (r: DatasetRecord) => ({ instruction: r.instruction, input: '', output: r.response }),
  sharegpt: (r: DatasetRecord) => ({
    conversations: [
      { from: 'human', value: r.instruction },
      { from: 'gpt', value: r.response },
    ],
  }),
  jsonl: (r: DatasetRecord) => r,
};

/**
 * Kept pairs of a run, from its store (an out dir or s3://...): dataset.jsonl when written, else
 * what the run has kept so far (its record objects).
 */
export async function readKept(outDir: string): Promise<DatasetRecord[]> {
  const store = openStore(outDir);
  if (await store.exists(runKeys.dataset)) {
    const records: DatasetRecord[] = [];
    for await (const l of store.lines(runKeys.dataset)) if (l) records.push(JSON.parse(l) as DatasetRecord);
    return records;
  }
  return keptRecords(store);
}

type FormatName = keyof typeof formats;

export const exportCommand: CommandSpec<{ format: FormatName; out: string }> = {
  name: 'export',
  summary: 'write the kept pairs of a run in a fine-tuning format',
  args: RUN_ID,
  options(cmd) {
    cmd
      .addOption(
        choiceOption(
          '--format <format>',
          'openai: {"messages":[user, assistant]}; alpaca: {instruction,input,output}; ' +
            'sharegpt: {conversations:[human, gpt]}; jsonl: the records as they are',
          Object.keys(formats),
        ).makeOptionMandatory(),
      )
      .addOption(
        new Option('--out <file>', 'the file to write (a path or s3://bucket/key)').makeOptionMandatory(),
      );
  },
  async run({ format, out: outFile }, [runId]) {
    const out = exportTarget(outFile);
    const outDir = await withRun(
      runId!,
      async (h) => (await h.describe()).memo?.outDir as string | undefined,
    );
    if (!outDir) throw new Error(`run ${runId} has no out dir recorded`);
    const records = await readKept(outDir);
    const convert = formats[format];
    const text = records.map((r) => JSON.stringify(convert(r))).join('\n') + (records.length ? '\n' : '');
    if (isS3Location(out)) {
      const { dir, key } = splitObjectUrl(out);
      await openStore(dir).write(key, text);
    } else writeFileAtomic(out, text);
    process.stdout.write(`wrote ${records.length} pairs (${format}) to ${out}\n`);
  },
};

/** `export --out`: an absolute path, or an s3://bucket/key object (checked before the run is looked up). */
function exportTarget(given: string): string {
  try {
    const out = resolveLocation(given);
    if (isS3Location(out)) splitObjectUrl(out);
    return out;
  } catch (err) {
    throw new InputError(`--out: ${(err as Error).message}; expected a file path or s3://bucket/key`);
  }
}

export const workerCommand: CommandSpec<{ concurrency?: number } & ConfigOption> = {
  name: 'worker',
  summary: 'run a worker against TEMPORAL_ADDRESS until SIGINT/SIGTERM (graceful)',
  options(cmd) {
    cmd
      .addOption(
        intOption(
          '--concurrency <n>',
          'LLM calls (activities) in flight from this worker, per role (default 64)',
        ),
      )
      .addOption(
        sharedOptions.config(
          'the run config: its roles.<role>.rpm become cluster-wide rate limits on the role task ' +
            "queues (give every worker of a cluster the same file); its cache section sets this worker's LLM result cache",
        ),
      );
  },
  async run({ concurrency, config: configFile }) {
    const config = configFile ? loadConfig(configFile, process.env) : undefined;
    const roleRpm = config ? rolesRpm(config) : undefined;
    const target = temporalTarget();
    const address = target.explicit ? target.address : `127.0.0.1:${embeddedPort()}`;
    const connection = await connectWorker({ ...target, address });
    const worker = await createWorker({
      connection,
      namespace: target.namespace,
      concurrency,
      roleRpm,
      cache: config?.cache,
    });
    process.stderr.write(
      `codeclm: worker on ${address} (namespace ${target.namespace}); SIGINT/SIGTERM to stop gracefully\n`,
    );
    // Graceful: stop polling, let in-flight activities finish (or hand them back after the grace time).
    const stopSignals = onShutdownSignal((signal) => {
      process.stderr.write(`codeclm: ${signal}: worker shutting down\n`);
      worker.shutdown();
    });
    try {
      await worker.run();
    } finally {
      stopSignals();
      await connection.close();
    }
    process.stderr.write('codeclm: worker stopped\n');
  },
};

/** The per-role rpm of a config, for the role task queues' rate limits (src/worker.ts). */
export function rolesRpm(config: ResolvedConfig): Partial<Record<RoleName, number>> {
  const out: Partial<Record<RoleName, number>> = {};
  for (const role of roleNames) if (config.roles[role].rpm) out[role] = config.roles[role].rpm;
  return out;
}
