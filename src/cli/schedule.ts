import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleSummary,
} from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time';
import { flag, str, UsageError, type Command, type ParsedArgs } from './command';
import { prefetchRunInputs, prepareRunInput, runOptions } from './run';
import { SCHEDULE_TIME_SUFFIX } from './ids';
import { controlClient } from './runtime';
import { wantsSimulator } from './offline';
import { defaultTaskQueue } from '../temporal/connection';
import { InputError } from '../util/errors';
import type { ScheduledRunInput } from '../workflows/scheduled';
import { preflight } from './check';

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

const USAGE = [
  'schedule create ID (--every DURATION | --cron EXPR) --seeds FILE --out DIR [--config FILE] [--size N] [--field NAME] [--skip-invalid] [--decontaminate FILE...] [--no-check]',
  '                   [--overlap skip|buffer_one|buffer_all|cancel_other|terminate_other|allow_all] [--catchup-window DURATION] [--paused] [--note TEXT]',
  '       schedule list [--json]',
  '       schedule describe ID [--json]',
  '       schedule trigger ID [--overlap POLICY]',
  '       schedule pause ID [--note TEXT] | schedule unpause ID [--note TEXT]',
  '       schedule delete ID',
].join('\n');

export const scheduleCommand: Command = {
  name: 'schedule',
  summary:
    'recurring dataset refreshes on Temporal Schedules (create, list, describe, trigger, pause, unpause, delete)',
  usage: USAGE,
  details: [
    '--every DURATION       interval, e.g. 30s, 15m, 6h, 1d (ms-style durations)',
    '--cron EXPR            cron expression instead, e.g. "0 3 * * *" (UTC)',
    '--overlap POLICY       when a refresh is still running at the next time: skip (default), buffer_one,',
    '                       buffer_all, cancel_other, terminate_other, allow_all',
    '--catchup-window DUR   how far back missed refreshes are still taken after an outage (default 1 year, Temporal default)',
    '--paused               create the schedule paused (unpause it later)',
    '--task-queue NAME      (advanced) task queue of the workers; default CODECLM_TASK_QUEUE or "codeclm"',
    'Run options (--seeds, --out, --config, --size, --field, --skip-invalid, --decontaminate) are those of `codeclm run`;',
    'with method.dedupe on, a refresh also removes instructions that an earlier version of the schedule had.',
    'config and seeds are validated now (exit 2 if invalid), but the seed FILE is read again at every refresh.',
    'Each refresh writes DIR/versions/<UTC timestamp>-<id>/ (never overwritten), with changes.json and a',
    '"Changes" section in report.md/report.json against the previous version, then points DIR/latest',
    '(symlink) and DIR/LATEST (text) at it. `codeclm status <workflow id>` shows a refresh like any run.',
    "The schedule is kept by the Temporal server (TEMPORAL_ADDRESS, else the embedded server's address);",
    'refreshes are executed by workers: keep `codeclm worker` running against the same server.',
    'Schedules need a real LLM provider: --config FILE, or OPENAI_BASE_URL/OPENAI_API_KEY. The role config is',
    'resolved now and stored in the schedule without any key; each worker reads keys from its own env.',
  ],
  options: {
    ...runOptions,
    every: { type: 'string' },
    cron: { type: 'string' },
    overlap: { type: 'string' },
    'catchup-window': { type: 'string' },
    paused: { type: 'boolean' },
    note: { type: 'string' },
    'task-queue': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args) {
    const [sub, ...rest] = args.positionals;
    const sargs: ParsedArgs = { values: args.values, positionals: rest };
    switch (sub) {
      case 'create':
        return createSchedule(sargs);
      case 'list':
        return withClient((c) => listSchedules(c, flag(args, 'json')));
      case 'describe':
        return withClient((c) => describeSchedule(c, idArg(sargs, 'describe'), flag(args, 'json')));
      case 'trigger':
        return withClient(async (c) => {
          const id = idArg(sargs, 'trigger');
          const overlap = str(args, 'overlap') ? overlapPolicy(str(args, 'overlap')!) : undefined;
          await existing(c, id).trigger(overlap);
          process.stdout.write(`triggered: ${id}\n`);
        });
      case 'pause':
      case 'unpause':
        return withClient(async (c) => {
          const id = idArg(sargs, sub);
          const h = existing(c, id);
          await (sub === 'pause'
            ? h.pause(str(args, 'note') ?? 'paused with codeclm')
            : h.unpause(str(args, 'note') ?? 'unpaused with codeclm'));
          process.stdout.write(`${sub}d: ${id}\n`);
        });
      case 'delete':
        return withClient(async (c) => {
          const id = idArg(sargs, 'delete');
          await existing(c, id).delete();
          process.stdout.write(
            `deleted: ${id} (runs already started go on; versions already written stay)\n`,
          );
        });
      default:
        throw new UsageError(
          `codeclm schedule: ${sub ? `unknown subcommand "${sub}"` : 'a subcommand is required'}\nusage: codeclm ${USAGE}`,
        );
    }
  },
};

function idArg(args: ParsedArgs, sub: string): string {
  const id = args.positionals[0];
  if (!id) throw new UsageError(`codeclm schedule ${sub}: ID is required\nusage: codeclm ${USAGE}`);
  return id;
}

function overlapPolicy(name: string): (typeof OVERLAP)[OverlapName] {
  const key = name.toLowerCase().replace(/-/g, '_') as OverlapName;
  if (!(key in OVERLAP))
    throw new UsageError(
      `codeclm schedule: --overlap must be one of ${Object.keys(OVERLAP).join(', ')}, got "${name}"`,
    );
  return OVERLAP[key];
}

function duration(name: string, value: string, min = 1000): number {
  let ms: number;
  try {
    ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
  } catch {
    throw new UsageError(
      `codeclm schedule: --${name} must be a duration such as 30s, 15m, 6h or 1d, got "${value}"`,
    );
  }
  if (!Number.isFinite(ms) || ms < min)
    throw new UsageError(`codeclm schedule: --${name} must be at least ${min / 1000}s, got "${value}"`);
  return ms;
}

function checkCron(expr: string): void {
  const fields = expr.trim().split(/\s+/);
  if (expr.trim().startsWith('@')) return; // @daily, @hourly, @every 1h ...: the server checks them
  if (fields.length < 5 || fields.length > 7 || !fields.every((f) => /^[0-9A-Za-z*?/,\-#LW]+$/.test(f))) {
    throw new UsageError(
      `codeclm schedule: --cron must be a cron expression with 5 fields (minute hour day month weekday), e.g. "0 3 * * *"; got "${expr}"`,
    );
  }
}

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

export function taskQueueOf(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  return str(args, 'task-queue') ?? defaultTaskQueue(env);
}

async function createSchedule(args: ParsedArgs): Promise<number> {
  const id = idArg(args, 'create');
  if (!/^[A-Za-z0-9._-]{1,80}$/.test(id))
    throw new UsageError(
      `codeclm schedule create: ID may use letters, digits, '.', '_' and '-' (got "${id}")`,
    );
  const every = str(args, 'every');
  const cron = str(args, 'cron');
  if (!!every === !!cron)
    throw new UsageError(
      `codeclm schedule create: give exactly one of --every DURATION or --cron EXPR\nusage: codeclm ${USAGE}`,
    );
  const everyMs = every ? duration('every', every) : undefined;
  if (cron) checkCron(cron);
  const overlap = overlapPolicy(str(args, 'overlap') ?? 'skip');
  const catchup = str(args, 'catchup-window')
    ? duration('catchup-window', str(args, 'catchup-window')!, 10_000)
    : undefined;

  // Same validation as `codeclm run`: bad config or seeds exit 2 before anything is created.
  await prefetchRunInputs(args);
  const run = prepareRunInput(args, scheduleCommand, id, {
    command: 'schedule create',
    what: 'the schedule ID',
    appended: SCHEDULE_TIME_SUFFIX,
  });
  if (wantsSimulator(!!str(args, 'config'))) {
    throw new InputError(
      'codeclm schedule create: no LLM provider configured. A schedule runs on workers elsewhere, so the offline ' +
        'simulator fallback of `run` does not apply: give --config FILE, or set OPENAI_BASE_URL (and OPENAI_API_KEY in the ' +
        "workers' environment). Keys are never stored in the schedule.",
    );
  }
  // The workers will call these endpoints later: find out now whether they can (--no-check skips).
  if (!flag(args, 'no-check'))
    await preflight(run.config, 'schedule create', { hasConfigFile: !!str(args, 'config') });
  const taskQueue = taskQueueOf(args);
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
          paused: flag(args, 'paused'),
          note: str(args, 'note') ?? (flag(args, 'paused') ? 'created paused' : undefined),
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
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ schedule_id: id, ...(d ? scheduleView(d) : {}) })}\n`);
    } else {
      process.stdout.write(
        [
          `schedule ${id} created${flag(args, 'paused') ? ' (paused)' : ''}: ${every ? `every ${every}` : `cron "${cron}"`}, overlap ${overlap.toLowerCase()}`,
          `  versions in ${run.outDir}/versions/, newest at ${run.outDir}/latest`,
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
  if (v.out_dir) lines.push(`  out: ${v.out_dir} (latest: ${v.out_dir}/latest)`);
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
