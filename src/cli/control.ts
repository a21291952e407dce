import path from 'node:path';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { flag, intOpt, requireStr, str, UsageError, type Command, type ParsedArgs } from './command';
import { controlClient } from './runtime';
import type { RunProgress, RunResult, RunState } from '../schemas/run';
import { usageTotals, type DatasetRecord, type Usage } from '../schemas/records';
import { dialectLines } from '../report/dialects';
import { progressQuery, pauseSignal, resumeSignal, type codeclmRun } from '../workflows/pipeline';
import { failureMessage } from '../util/failure';
import { runKeys } from '../store/runDir';
import { openStore } from '../store/open';
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

function runIdArg(args: ParsedArgs, command: Command): string {
  const id = args.positionals[0];
  if (!id)
    throw new UsageError(`codeclm ${command.name}: RUN_ID is required\nusage: codeclm ${command.usage}`);
  return id;
}

async function withRun<T>(
  args: ParsedArgs,
  command: Command,
  fn: (h: WorkflowHandle<typeof codeclmRun>, c: Client) => Promise<T>,
): Promise<T> {
  const runId = runIdArg(args, command);
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
}

export async function runStatus(handle: WorkflowHandle<typeof codeclmRun>): Promise<StatusView> {
  const desc = await handle.describe();
  const state = STATE_OF[desc.status.name] ?? 'failed';
  const outDir = desc.memo?.outDir as string | undefined;
  let progress: (Pick<RunProgress, 'counters' | 'usage'> & Partial<RunProgress>) | undefined;
  let error: string | undefined;
  if (state === 'running') {
    progress = await handle.query(progressQuery).catch(() => undefined);
  } else if (state === 'completed') {
    const result: RunResult = await handle.result();
    progress = { counters: result.counters, usage: result.usage, phase: 'done' };
  } else {
    await handle.result().catch((err: unknown) => (error = failureMessage(err)));
    const report = outDir
      ? await openStore(outDir)
          .readJson<{ counts: RunProgress['counters']; usage: { per_stage_role: RunProgress['usage'] } }>(
            runKeys.reportJson,
          )
          .catch(() => undefined)
      : undefined;
    if (report) progress = { counters: report.counts, usage: report.usage.per_stage_role };
  }
  const view: StatusView = {
    run_id: handle.workflowId,
    state: progress?.state === 'paused' ? 'paused' : state,
    out_dir: outDir,
    error,
  };
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

export const statusCommand: Command = {
  name: 'status',
  summary: 'state and counters of a run',
  usage: 'status RUN_ID [--json]',
  options: { json: { type: 'boolean' } },
  async run(args) {
    const view = await withRun(args, statusCommand, (h) => runStatus(h));
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify(view)}\n`);
    else {
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
          lines.push(`    ${k.padEnd(16)} ${u.calls} calls, ${u.promptTokens}+${u.completionTokens} tokens`);
        for (const line of dialectLines(per_stage)) lines.push(`  ${line}`);
      }
      for (const line of batchLines(view.batches ?? [])) lines.push(`  ${line}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  },
};

export const waitCommand: Command = {
  name: 'wait',
  summary: 'block until a run ends; exit 0 only if it completed',
  usage: 'wait RUN_ID [--json]',
  options: { json: { type: 'boolean' } },
  async run(args) {
    return withRun(args, waitCommand, async (handle) => {
      try {
        const result = await handle.result();
        process.stdout.write(
          flag(args, 'json')
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

function signalCommand(name: 'pause' | 'resume' | 'cancel', summary: string): Command {
  const resume = name === 'resume';
  const command: Command = {
    name,
    summary,
    usage: resume ? 'resume RUN_ID [--budget-tokens N] [--budget-calls N]' : `${name} RUN_ID`,
    details: resume
      ? [
          '--budget-tokens N   new token budget for the run (a run paused by its budget needs it raised)',
          '--budget-calls N    new LLM-call budget for the run',
        ]
      : undefined,
    options: resume ? { 'budget-tokens': { type: 'string' }, 'budget-calls': { type: 'string' } } : {},
    async run(args) {
      const budget = resume
        ? {
            budgetTokens: intOpt(args, 'budget-tokens', command),
            budgetCalls: intOpt(args, 'budget-calls', command),
          }
        : undefined;
      await withRun(args, command, async (handle) => {
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
        `${name === 'cancel' ? 'cancellation requested' : `${name}d`}: ${args.positionals[0]}${raised}\n`,
      );
    },
  };
  return command;
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

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the kept pairs of a run in a fine-tuning format',
  usage: 'export RUN_ID --format openai|alpaca|sharegpt|jsonl --out FILE',
  details: [
    'openai: {"messages":[user, assistant]}; alpaca: {instruction,input,output}; sharegpt: {conversations:[human, gpt]}; jsonl: the records as they are',
  ],
  options: { format: { type: 'string' }, out: { type: 'string' } },
  async run(args) {
    const format = requireStr(args, 'format', exportCommand);
    if (!(format in formats))
      throw new UsageError(
        `codeclm export: --format must be one of ${Object.keys(formats).join(', ')}, got "${format}"`,
      );
    const out = path.resolve(requireStr(args, 'out', exportCommand));
    const outDir = await withRun(
      args,
      exportCommand,
      async (h) => (await h.describe()).memo?.outDir as string | undefined,
    );
    if (!outDir) throw new Error(`run ${args.positionals[0]} has no out dir recorded`);
    const records = await readKept(outDir);
    const convert = formats[format as keyof typeof formats];
    writeFileAtomic(
      out,
      records.map((r) => JSON.stringify(convert(r))).join('\n') + (records.length ? '\n' : ''),
    );
    process.stdout.write(`wrote ${records.length} pairs (${format}) to ${out}\n`);
  },
};

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a worker against TEMPORAL_ADDRESS until SIGINT/SIGTERM (graceful)',
  usage: 'worker [--concurrency N] [--config FILE]',
  details: [
    '--concurrency N   LLM calls (activities) in flight from this worker, per role (default 64)',
    '--config FILE     the run config: its roles.<role>.rpm become cluster-wide rate limits on the',
    '                  role task queues (give every worker of a cluster the same file); its cache',
    "                  section sets this worker's LLM result cache",
  ],
  options: { concurrency: { type: 'string' }, config: { type: 'string' } },
  async run(args) {
    const concurrency = intOpt(args, 'concurrency', workerCommand);
    const configFile = str(args, 'config');
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
