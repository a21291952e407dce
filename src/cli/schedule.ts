import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleSummary,
} from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Command as Commander } from 'commander';
import { checkedOption, choiceOption, UsageError, type CommandSpec } from './command';
import { sharedOptions, type JsonOption } from './options';
import {
  addRunInputOptions,
  checkBatchSpools,
  prefetchRunInputs,
  prepareRunInput,
  type RunInputOptions,
} from './run';
import { SCHEDULE_TIME_SUFFIX } from './ids';
import { controlClient } from './runtime';
import { wantsSimulator } from './offline';
import { defaultTaskQueue } from '../temporal/connection';
import { InputError } from '../util/errors';
import type { ScheduledRunInput } from '../workflows/scheduled';
import { preflight } from './check';
import { isS3Location } from '../store/store';

/** Where a schedule's newest version is named: the `latest` symlink, or the LATEST object on S3. */
const latestOf = (outDir: string) =>
  isS3Location(outDir) ? `${outDir}/LATEST (the newest version's name)` : `${outDir}/latest`;

/**
 * `codeclm schedule`: recurring dataset refreshes on Temporal Schedules. Each action starts
 * codeclmScheduledRun (src/workflows/scheduled.ts), which writes a new version under DIR/versions/
 * and moves DIR/latest to it. The schedule lives on the Temporal server (TEMPORAL_ADDRESS, or the
 * embedded default address); the runs are executed by workers running elsewhere (`codeclm worker`).
 */
export const SCHEDULED_WORKFLOW = 'codeclmScheduledRun';

const OVERLAP = {
  skip: 'SKIP',
  buffer_one: 'BUFFER_ONE',
  buffer_all: 'BUFFER_ALL',
  cancel_other: 'CANCEL_OTHER',
  terminate_other: 'TERMINATE_OTHER',
  allow_all: 'ALLOW_ALL',
} as const;
type OverlapName = keyof typeof OVERLAP;

const OVERLAP_NAMES = Object.keys(OVERLAP) as OverlapName[];

export interface ScheduleCreateOptions extends RunInputOptions, JsonOption {
  every?: string;
  cron?: string;
  overlap: OverlapName;
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
  taskQueue?: string;
}

/** The overlap policy option, by its lower-case name (`buffer-one` is taken for `buffer_one`). */
function overlapOption(description: string) {
  return choiceOption('--overlap <policy>', description, OVERLAP_NAMES, (v) =>
    v.toLowerCase().replace(/-/g, '_'),
  );
}

function durationOption(flags: string, description: string, minMs: number) {
  return checkedOption(flags, description, (value) => {
    const ms = durationMs(value);
    if (ms === undefined) return { ok: false, expected: 'a duration such as 30s, 15m, 6h or 1d' };
    if (ms < minMs) return { ok: false, expected: `at least ${minMs / 1000}s` };
    return { ok: true, value };
  });
}

function durationMs(value: string): number | undefined {
  try {
    const ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

/** A light check of a cron expression (the server checks it fully when the schedule is created). */
function isCron(expr: string): boolean {
  const fields = expr.trim().split(/\s+/);
  if (expr.trim().startsWith('@')) return true; // @daily, @hourly, @every 1h ...: the server checks them
  return fields.length >= 5 && fields.length <= 7 && fields.every((f) => /^[0-9A-Za-z*?/,\-#LW]+$/.test(f));
}

export const scheduleCreateCommand: CommandSpec<ScheduleCreateOptions> = {
  name: 'create',
  summary: 'create a schedule that refreshes a dataset (takes the run options of `codeclm run`)',
  args: '<ID>',
  options(cmd) {
    cmd
      .addOption(
        durationOption(
          '--every <duration>',
          'interval, e.g. 30s, 15m, 6h, 1d (ms-style durations)',
          1000,
        ).conflicts('cron'),
      )
      .addOption(
        checkedOption('--cron <expr>', 'cron expression instead, e.g. "0 3 * * *" (UTC)', (value) =>
          isCron(value)
            ? { ok: true, value }
            : {
                ok: false,
                expected: 'a cron expression with 5 fields (minute hour day month weekday), e.g. "0 3 * * *"',
              },
        ),
      );
    addRunInputOptions(cmd);
    cmd
      .addOption(overlapOption('when a refresh is still running at the next time').default('skip'))
      .addOption(
        durationOption(
          '--catchup-window <duration>',
          'how far back missed refreshes are still taken after an outage (default 1 year, Temporal default)',
          10_000,
        ),
      )
      .option('--paused', 'create the schedule paused (unpause it later)')
      .option('--note <text>', "a note kept with the schedule's state")
      .option(
        '--task-queue <name>',
        '(advanced) task queue of the workers; default CODECLM_TASK_QUEUE or "codeclm"',
      )
      .addOption(sharedOptions.json());
  },
  help: [
    'With method.dedupe on, a refresh also removes instructions that an earlier version of the schedule had.',
    'config and seeds are validated now (exit 2 if invalid), but the seed FILE is read again at every refresh.',
    'Each refresh writes DIR/versions/<UTC timestamp>-<id>/ (never overwritten), with changes.json and a',
    '"Changes" section in report.md/report.json against the previous version, then points DIR/latest',
    '(symlink) and DIR/LATEST (text) at it. `codeclm status <workflow id>` shows a refresh like any run.',
    "The schedule is kept by the Temporal server (TEMPORAL_ADDRESS, else the embedded server's address);",
    'refreshes are executed by workers: keep `codeclm worker` running against the same server.',
    'Schedules need a real LLM provider: --config FILE, or OPENAI_BASE_URL/OPENAI_API_KEY. The role config is',
    'resolved now and stored in the schedule without any key; each worker reads keys from its own env.',
  ],
  run: (options, [id]) => createSchedule(id!, options),
};

/** A subcommand acting on one existing schedule, named by its ID. */
function onSchedule<O>(
  name: string,
  summary: string,
  options: ((cmd: Commander) => void) | undefined,
  act: (client: Client, id: string, options: O) => Promise<void>,
): CommandSpec<O> {
  return {
    name,
    summary,
    args: '<ID>',
    options,
    run: (opts, [id]) => withClient((c) => act(c, id!, opts)),
  };
}

const noteOption = (verb: string) => (cmd: Commander) =>
  cmd.option('--note <text>', `a note kept with the schedule's state (default "${verb} with codeclm")`);

export const scheduleCommand: CommandSpec = {
  name: 'schedule',
  summary:
    'recurring dataset refreshes on Temporal Schedules (create, list, describe, trigger, pause, unpause, delete)',
  subcommands: [
    scheduleCreateCommand as CommandSpec<never>,
    {
      name: 'list',
      summary: 'the codeclm schedules on this server, with their next and recent runs',
      options: (cmd) => cmd.addOption(sharedOptions.json()),
      run: (options: JsonOption) => withClient((c) => listSchedules(c, !!options.json)),
    },
    onSchedule<JsonOption>(
      'describe',
      'one schedule: spec, state, out dir, next and recent runs',
      (cmd) => cmd.addOption(sharedOptions.json()),
      async (c, id, options) => void (await describeSchedule(c, id, !!options.json)),
    ),
    onSchedule<{ overlap?: OverlapName }>(
      'trigger',
      'start a refresh now',
      (cmd) => cmd.addOption(overlapOption("overlap policy for this refresh (default: the schedule's)")),
      async (c, id, options) => {
        await existing(c, id).trigger(options.overlap ? OVERLAP[options.overlap] : undefined);
        process.stdout.write(`triggered: ${id}\n`);
      },
    ),
    onSchedule<{ note?: string }>(
      'pause',
      'pause a schedule (no new refreshes)',
      noteOption('paused'),
      async (c, id, o) => {
        await existing(c, id).pause(o.note ?? 'paused with codeclm');
        process.stdout.write(`paused: ${id}\n`);
      },
    ),
    onSchedule<{ note?: string }>(
      'unpause',
      'unpause a schedule',
      noteOption('unpaused'),
      async (c, id, o) => {
        await existing(c, id).unpause(o.note ?? 'unpaused with codeclm');
        process.stdout.write(`unpaused: ${id}\n`);
      },
    ),
    onSchedule(
      'delete',
      'delete a schedule (runs already started go on; versions already written stay)',
      undefined,
      async (c, id) => {
        await existing(c, id).delete();
        process.stdout.write(`deleted: ${id} (runs already started go on; versions already written stay)\n`);
      },
    ),
  ] as CommandSpec<never>[],
};

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await controlClient();
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new Error(err.message.includes('not found') ? err.message : `no such schedule: ${err.message}`);
    throw err;
  } finally {
    await client.connection.close();
  }
}

function existing(client: Client, id: string) {
  return client.schedule.getHandle(id);
}

export function taskQueueOf(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return given ?? defaultTaskQueue(env);
}

async function createSchedule(id: string, options: ScheduleCreateOptions): Promise<number> {
  if (!/^[A-Za-z0-9._-]{1,80}$/.test(id))
    throw new UsageError(
      `codeclm schedule create: ID may use letters, digits, '.', '_' and '-' (got "${id}")`,
    );
  const { every, cron } = options;
  // Both at once is refused by the parser (conflicting options); neither is refused here.
  if (!every && !cron)
    throw new UsageError('codeclm schedule create: give one of --every DURATION or --cron EXPR');
  const everyMs = every ? durationMs(every) : undefined;
  const overlap = OVERLAP[options.overlap];
  const catchup = options.catchupWindow ? durationMs(options.catchupWindow) : undefined;

  // Same validation as `codeclm run`: bad config or seeds exit 2 before anything is created.
  await prefetchRunInputs(options);
  const run = prepareRunInput(options, id, {
    command: 'schedule create',
    what: 'the schedule ID',
    appended: SCHEDULE_TIME_SUFFIX,
  });
  if (wantsSimulator(!!options.config)) {
    throw new InputError(
      'codeclm schedule create: no LLM provider configured. A schedule runs on workers elsewhere, so the offline ' +
        'simulator fallback of `run` does not apply: give --config FILE, or set OPENAI_BASE_URL (and OPENAI_API_KEY in the ' +
        "workers' environment). Keys are never stored in the schedule.",
    );
  }
  await checkBatchSpools(run.config);
  // The workers will call these endpoints later: find out now whether they can (--no-check skips).
  if (options.check) await preflight(run.config, 'schedule create', { hasConfigFile: !!options.config });
  const taskQueue = taskQueueOf(options.taskQueue);
  const input: ScheduledRunInput = {
    scheduleId: id,
    outDir: run.outDir,
    seedsFile: run.seedsFile,
    field: run.field,
    skipInvalid: run.skipInvalid,
    config: run.config,
    taskQueue,
    ...(run.decontaminate ? { decontaminate: run.decontaminate } : {}),
  };

  return withClient(async (client) => {
    try {
      await client.schedule.create({
        scheduleId: id,
        spec: everyMs !== undefined ? { intervals: [{ every: everyMs }] } : { cronExpressions: [cron!] },
        action: {
          type: 'startWorkflow',
          workflowType: SCHEDULED_WORKFLOW,
          workflowId: id,
          taskQueue,
          args: [input],
          memo: { outDir: run.outDir, seedsFile: run.seedsFile, scheduleId: id },
        },
        policies: { overlap, ...(catchup !== undefined ? { catchupWindow: catchup } : {}) },
        state: {
          paused: !!options.paused,
          note: options.note ?? (options.paused ? 'created paused' : undefined),
        },
        memo: { outDir: run.outDir, seedsFile: run.seedsFile, codeclm: true },
      });
    } catch (err) {
      if (err instanceof ScheduleAlreadyRunning)
        throw new Error(`schedule "${id}" already exists (delete it first, or pick another ID)`);
      const msg = (err as Error).message ?? '';
      if (cron && /invalid|cron/i.test(msg))
        throw new InputError(`codeclm schedule create: --cron "${cron}" was rejected by the server: ${msg}`);
      throw err;
    }
    const h = client.schedule.getHandle(id);
    const d = await h.describe().catch(() => undefined);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ schedule_id: id, ...(d ? scheduleView(d) : {}) })}\n`);
    } else {
      process.stdout.write(
        [
          `schedule ${id} created${options.paused ? ' (paused)' : ''}: ${every ? `every ${every}` : `cron "${cron}"`}, overlap ${overlap.toLowerCase()}`,
          `  versions in ${run.outDir}/versions/, newest at ${latestOf(run.outDir)}`,
          `  next: ${
            d
              ? d.info.nextActionTimes
                  .slice(0, 3)
                  .map((t) => t.toISOString())
                  .join(', ') || '-'
              : '-'
          }`,
          `  runs are executed by workers on task queue "${taskQueue}": keep \`codeclm worker\` running against this server`,
          '',
        ].join('\n'),
      );
    }
    return 0;
  });
}

export interface ScheduleView {
  schedule_id: string;
  spec: string;
  paused: boolean;
  note?: string;
  out_dir?: string;
  seeds?: string;
  overlap?: string;
  next_runs: string[];
  recent_runs: { workflow_id: string; scheduled_at: string; taken_at: string }[];
}

function specText(spec: ScheduleSummary['spec'] | ScheduleDescription['spec'] | undefined): string {
  if (!spec) return '?';
  const parts: string[] = [];
  for (const i of spec.intervals ?? []) parts.push(`every ${formatMs(Number(i.every))}`);
  for (const c of (spec as { cronExpressions?: string[] }).cronExpressions ?? []) parts.push(`cron "${c}"`);
  if (!parts.length && (spec.calendars ?? []).length)
    parts.push(`${spec.calendars!.length} calendar spec(s)`);
  return parts.join(', ') || '?';
}

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

function scheduleView(
  s: ScheduleSummary | ScheduleDescription,
): Omit<ScheduleView, 'schedule_id'> & { schedule_id?: string } {
  const memo = (s.memo ?? {}) as { outDir?: string; seedsFile?: string };
  return {
    schedule_id: s.scheduleId,
    spec: specText(s.spec),
    paused: s.state.paused,
    note: s.state.note || undefined,
    out_dir: memo.outDir,
    seeds: memo.seedsFile,
    overlap: 'policies' in s ? String(s.policies.overlap).toLowerCase() : undefined,
    next_runs: s.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()),
    recent_runs: s.info.recentActions.slice(-5).map((a) => ({
      workflow_id: a.action.workflow.workflowId,
      scheduled_at: a.scheduledAt.toISOString(),
      taken_at: a.takenAt.toISOString(),
    })),
  };
}

function renderView(v: ReturnType<typeof scheduleView>): string {
  const lines = [
    `${v.schedule_id}: ${v.spec}${v.paused ? ` (paused${v.note ? `: ${v.note}` : ''})` : ''}${v.overlap ? `, overlap ${v.overlap}` : ''}`,
  ];
  if (v.out_dir) lines.push(`  out: ${v.out_dir} (latest: ${latestOf(v.out_dir)})`);
  if (v.seeds) lines.push(`  seeds: ${v.seeds}`);
  lines.push(`  next: ${v.next_runs.slice(0, 3).join(', ') || '-'}`);
  lines.push(`  recent: ${v.recent_runs.length ? '' : '-'}`);
  for (const r of v.recent_runs)
    lines.push(`    ${r.workflow_id}  (taken ${r.taken_at})  -> codeclm status ${r.workflow_id}`);
  if (!v.recent_runs.length) lines[lines.length - 1] = '  recent: -';
  return lines.join('\n');
}

async function listSchedules(client: Client, json: boolean): Promise<number> {
  const views: ReturnType<typeof scheduleView>[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action && s.action.type === 'startWorkflow' && s.action.workflowType !== SCHEDULED_WORKFLOW)
      continue;
    views.push(scheduleView(s));
  }
  views.sort((a, b) => String(a.schedule_id).localeCompare(String(b.schedule_id)));
  if (json) process.stdout.write(`${JSON.stringify(views)}\n`);
  else process.stdout.write(views.length ? `${views.map(renderView).join('\n')}\n` : 'no schedules\n');
  return 0;
}

async function describeSchedule(client: Client, id: string, json: boolean): Promise<number> {
  const d = await existing(client, id).describe();
  const view = scheduleView(d);
  const input = (d.action.type === 'startWorkflow' ? d.action.args?.[0] : undefined) as
    ScheduledRunInput | undefined;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ ...view, task_queue: d.action.taskQueue, size: input?.config.limits.size })}\n`,
    );
  } else {
    process.stdout.write(
      `${renderView(view)}\n  task queue: ${d.action.taskQueue}${input ? `, size ${input.config.limits.size}` : ''}\n`,
    );
  }
  return 0;
}
