import crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import OpenAI, { APIError } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import type { ResolvedRole, RoleName } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { batchSdk, resultLines } from '../batch/provider';
import {
  BATCH_REQUEST_FAILED,
  BATCHER_WORKFLOW,
  batcherWorkflowId,
  OUTCOMES_QUERY,
  runWorkflowIdOf,
  SPOOL_SIGNAL,
  type BatcherInput,
  type BatchRequest,
  type OutcomeView,
  type SpooledRequests,
  type StoredOutcome,
} from '../batch/protocol';
import {
  defaultSpool,
  PART_MAX_REQUESTS,
  readOutcome,
  spoolKeys,
  spoolStore,
  writePart,
} from '../batch/spool';
import { mapLimit } from '../store/store';

/**
 * The batch-mode transport of the LLM client (src/llm/client.ts): a chat-completion request goes to
 * the run's batcher workflow for its role (src/workflows/batcher.ts) instead of the endpoint, and
 * the call waits for its answer. The request id is deterministic (workflow, workflow run, activity,
 * call index within the activity), so a retried activity asks for the request it asked for before
 * and the batcher, which deduplicates by id, never sends it twice.
 *
 * One waiter per worker process and batcher (not one per activity): once per tick it writes the
 * new requests' lines to the batch spool (src/batch/spool.ts) as one part, signals the batcher
 * their ids and sizes (never the lines), and queries the batcher for the outcomes of every request
 * waiting in this process. A finished request is answered from its outcome in the spool (one small
 * object holding its chat completion, written by the batcher's poll): no waiting process downloads
 * an output file. A request the batcher does not know (it
 * never got it, or forgot it after a continue-as-new) is looked up in the spool before it is sent
 * again, so a late retry gets the answer of the batch that already ran instead of a second bill.
 */
export type BatchSend = (
  params: ChatCompletionCreateParamsNonStreaming,
  signal?: AbortSignal,
) => Promise<{ completion: ChatCompletion; replayed: boolean }>;

/** How often a process asks its batchers for outcomes (CODECLM_BATCH_TICK_MS, default 1 s). */
const tickMs = () => Number(process.env.CODECLM_BATCH_TICK_MS ?? 1000);
/** Consecutive failed ticks after which the waiting calls fail (retryably) with the error. */
const FAILED_TICKS = 30;
/**
 * Every this many ticks with calls waiting, the batcher is looked at: a closed workflow still
 * answers its query (with the state it had), so calls waiting on a terminated or failed batcher
 * would see "pending" for ever.
 */
const ALIVE_CHECK_TICKS = 25;
/** A batcher closed like this lost what it held: its waiting calls are sent to a new one. */
const LOST = new Set(['TERMINATED', 'FAILED', 'TIMED_OUT']);
const QUERY_CHUNK = 5000;
/** How long answers wanted from one output file are gathered before one pass over it (fallback). */
const GATHER_MS = 50;
/** Outcomes read from the spool at once per tick. */
const LOOKUPS = 32;

const callIndex = new WeakMap<Context, number>();

/** A request this process waits for: settling it settles every call waiting on it (listeners). */
interface Waiter {
  resolve(c: ChatCompletion): void;
  reject(e: unknown): void;
  req: BatchRequest;
  listeners: Set<Listener>;
}

/** One call waiting for a request's outcome (its activity attempt). */
interface Listener {
  resolve(c: ChatCompletion): void;
  reject(e: unknown): void;
}

class BatcherLink {
  private readonly waiting = new Map<string, Waiter>();
  private readonly toSend: BatchRequest[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failedTicks = 0;
  private ticksSinceAliveCheck = 0;
  private spool: string | undefined;
  /** Requests whose answers are being picked out of an output file (see settle). */
  private readonly fromFile = new Set<string>();
  client!: Client;
  taskQueue!: string;

  constructor(
    private readonly workflowId: string,
    private readonly start: BatcherInput,
    private readonly files: OutputLookup,
    private readonly role: RoleName,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** `retried`: an earlier attempt may have sent it already, so look in the spool before sending. */
  ask(req: BatchRequest, signal?: AbortSignal, retried = false): Promise<ChatCompletion> {
    return new Promise<ChatCompletion>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? new Error('cancelled'));
      // Two attempts of one activity in this process ask for the same id (the server timed the
      // first out and retried it here before the first learnt it was cancelled): both wait on one
      // entry, and the first one's cancellation leaves the second waiting.
      const existing = this.waiting.get(req.id);
      const w = existing ?? this.waiter(req);
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const me: Listener = {
        resolve(c) {
          settled();
          resolve(c);
        },
        reject(e) {
          settled();
          reject(e);
        },
      };
      const onAbort = () => {
        w.listeners.delete(me);
        if (!w.listeners.size && this.waiting.get(req.id) === w) this.waiting.delete(req.id);
        reject(signal!.reason ?? new Error('cancelled'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      w.listeners.add(me);
      if (existing) return; // already sent (or being looked up) by the other attempt
      this.waiting.set(req.id, w);
      if (retried) void this.sendUnlessStored(req.id);
      else this.enqueue(req);
    });
  }

  /** The entry of a request in `waiting`: settling it settles every call waiting on it, once. */
  private waiter(req: BatchRequest): Waiter {
    const listeners = new Set<Listener>();
    const settle = (notify: (l: Listener) => void) => {
      if (this.waiting.get(req.id) === w) this.waiting.delete(req.id);
      for (const l of [...listeners]) notify(l);
      listeners.clear();
    };
    const w: Waiter = {
      req,
      listeners,
      resolve: (c: ChatCompletion) => settle((l) => l.resolve(c)),
      reject: (e: unknown) => settle((l) => l.reject(e)),
    };
    return w;
  }

  private enqueue(req: BatchRequest): void {
    this.toSend.push(req);
    this.schedule(0);
  }

  /**
   * A retried call's request may have been answered long ago, by a batch its batcher has since
   * forgotten (continue-as-new): its outcome in the spool then answers it, and nothing is sent.
   */
  private async sendUnlessStored(id: string): Promise<void> {
    const w = this.waiting.get(id);
    if (!w) return;
    try {
      const stored = await readOutcome(spoolStore(await this.spoolLocation(), this.env), id);
      if (stored) return await this.settle(w, id, stored);
    } catch {
      // The spool is not readable now: the batcher still dedupes the requests it holds.
    }
    if (this.waiting.has(id)) this.enqueue(w.req);
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => {
        if (this.waiting.size) this.schedule(tickMs());
      });
    }, ms);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    try {
      while (this.toSend.length) {
        const batch = this.toSend.splice(0, PART_MAX_REQUESTS);
        try {
          await this.send(batch);
        } catch (err) {
          this.toSend.unshift(...batch.filter((r) => this.waiting.has(r.id)));
          throw err;
        }
      }
      const ids = [...this.waiting.keys()];
      for (let i = 0; i < ids.length; i += QUERY_CHUNK) {
        const chunk = ids.slice(i, i + QUERY_CHUNK);
        const views = await this.client.workflow
          .getHandle(this.workflowId)
          .query<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY, chunk);
        await mapLimit(chunk, LOOKUPS, (id) => this.deliver(id, views[id]));
      }
      if (this.waiting.size && ++this.ticksSinceAliveCheck >= ALIVE_CHECK_TICKS) {
        this.ticksSinceAliveCheck = 0;
        await this.resendIfBatcherLost();
      }
      this.failedTicks = 0;
    } catch (err) {
      // The batcher is starting, moving to another worker or continuing-as-new: next tick. An
      // error that lasts fails the waiting calls (retryably, so it shows in `status` as retries).
      if (++this.failedTicks < FAILED_TICKS) return;
      this.failedTicks = 0;
      const failure = ApplicationFailure.retryable(
        `role ${this.role}: batcher ${this.workflowId} unreachable: ${(err as Error).message}`,
        'LlmBatcherUnreachable',
      );
      for (const w of [...this.waiting.values()]) w.reject(failure);
      this.toSend.length = 0;
    }
  }

  /**
   * A batcher terminated (by an operator, or at the history limit) or failed answers "pending" for
   * what it held: each waiting call then counts as unknown (answered from the spool if its outcome
   * is there, else sent again, which starts a new batcher). One that completed ended with its run.
   */
  private async resendIfBatcherLost(): Promise<void> {
    const d = await this.client.workflow.getHandle(this.workflowId).describe();
    if (!LOST.has(d.status.name)) return;
    await mapLimit([...this.waiting.keys()], LOOKUPS, (id) => this.deliver(id, { state: 'unknown' }));
  }

  /** The spool: `batch.spool`, else `<out>/.work/batches` of the run (asked once per process). */
  private async spoolLocation(): Promise<string> {
    if (this.spool) return this.spool;
    const configured = this.start.cfg.batch?.spool;
    if (configured) return (this.spool = configured);
    const run = this.client.workflow.getHandle(this.start.runWorkflowId);
    const errors: string[] = [];
    for (const query of ['progress', 'evalProgress']) {
      try {
        const p = await run.query<{ outDir?: string }>(query);
        if (p?.outDir) return (this.spool = defaultSpool(p.outDir));
      } catch (err) {
        errors.push(`${query}: ${(err as Error).message}`);
      }
    }
    throw new Error(
      `role ${this.role}: no batch spool: batch.spool is not set and ${this.start.runWorkflowId} ` +
        `does not tell its out location (${errors.join('; ')})`,
    );
  }

  /** Writes the requests' lines to the spool as one part and tells the batcher where they are. */
  private async send(batch: BatchRequest[]): Promise<void> {
    const spool = await this.spoolLocation();
    const lines = batch.map((r) => r.line);
    const part = await writePart(spoolStore(spool, this.env), lines);
    const msg: SpooledRequests = {
      spool,
      part,
      ids: batch.map((r) => r.id),
      bytes: lines.map((l) => Buffer.byteLength(l) + 1),
    };
    await this.client.workflow.signalWithStart(BATCHER_WORKFLOW, {
      workflowId: this.workflowId,
      taskQueue: this.taskQueue,
      args: [this.start],
      signal: SPOOL_SIGNAL,
      signalArgs: [msg],
    });
  }

  private async deliver(id: string, view: OutcomeView | undefined): Promise<void> {
    const w = this.waiting.get(id);
    if (!w || !view || view.state === 'pending') return;
    if (view.state === 'unknown' || view.state === 'stored') {
      // Unknown: never got it, or forgot it (continue-as-new, ended with its run). Its outcome may
      // be in the spool all the same; only if not is it sent (again).
      const store = spoolStore(await this.spoolLocation(), this.env);
      const stored = await readOutcome(store, id);
      if (stored) return this.settle(w, id, stored);
      if (view.state === 'stored') {
        // Written before the batcher recorded it: missing means the spool was deleted under a live
        // run. Only this call fails (throwing would fail the tick, and after FAILED_TICKS every
        // waiting call of the process, as "unreachable"); a retry would find it missing again.
        return w.reject(
          ApplicationFailure.nonRetryable(
            `role ${this.role}: batch request ${id}: outcome missing at ${store.where(spoolKeys.outcome(id))} ` +
              '(was the spool deleted while the run was live?)',
            'BatchSpoolMissing',
          ),
        );
      }
      if (!this.toSend.some((r) => r.id === id)) this.toSend.push(w.req);
      return;
    }
    return this.settle(w, id, view); // Legacy: outcomes of batches of inline lines
  }

  private async settle(
    w: Waiter,
    id: string,
    view: StoredOutcome | Exclude<OutcomeView, { state: 'stored' | 'pending' | 'unknown' }>,
  ): Promise<void> {
    if (view.state === 'done') {
      if ('answer' in view && view.answer) return w.resolve(view.answer);
      // Written before answers were spooled (a run in flight across an upgrade), or a legacy
      // batch: the answer is picked out of the output file. Not awaited, so the other answers of
      // this tick join the same pass over the file; a tick during the pass does not ask again.
      if (this.fromFile.has(id)) return;
      this.fromFile.add(id);
      this.files
        .answer(view.file, id)
        .then(w.resolve, w.reject)
        .finally(() => this.fromFile.delete(id));
      return;
    }
    if (view.status !== undefined) {
      // A request the provider refused (HTTP 4xx): the client treats it as it treats an online refusal.
      w.reject(APIError.generate(view.status, view.body as object, view.reason, new Headers()));
      return;
    }
    w.reject(
      ApplicationFailure.nonRetryable(
        `role ${this.role}: batch request ${id} failed: ${view.reason}`,
        BATCH_REQUEST_FAILED,
      ),
    );
  }
}

/**
 * Answers picked out of output files, for outcomes that do not hold theirs (see settle). The file is
 * streamed and only the asked-for answers are kept; the requests of one file asked for within
 * GATHER_MS (or while a pass over it runs, then in the next pass) share one download.
 */
class OutputLookup {
  private readonly asked = new Map<string, Map<string, Pick<Waiter, 'resolve' | 'reject'>[]>>();
  private readonly passes = new Set<string>();

  constructor(private readonly sdk: OpenAI) {}

  answer(fileId: string, id: string): Promise<ChatCompletion> {
    return new Promise<ChatCompletion>((resolve, reject) => {
      let ids = this.asked.get(fileId);
      if (!ids) this.asked.set(fileId, (ids = new Map()));
      ids.set(id, [...(ids.get(id) ?? []), { resolve, reject }]);
      if (!this.passes.has(fileId)) void this.pass(fileId);
    });
  }

  private async pass(fileId: string): Promise<void> {
    this.passes.add(fileId);
    await new Promise((r) => setTimeout(r, GATHER_MS));
    const ids = this.asked.get(fileId)!;
    this.asked.delete(fileId);
    try {
      for await (const line of resultLines(this.sdk, fileId)) {
        const waiters = line.custom_id === undefined ? undefined : ids.get(line.custom_id);
        if (!waiters || line.response?.status_code !== 200) continue;
        ids.delete(line.custom_id!);
        for (const w of waiters) w.resolve(line.response.body as ChatCompletion);
        if (!ids.size) break;
      }
      for (const [id, waiters] of ids)
        for (const w of waiters) w.reject(new Error(`request ${id} is not in output file ${fileId}`));
    } catch (err) {
      for (const waiters of ids.values()) for (const w of waiters) w.reject(err);
    } finally {
      this.passes.delete(fileId);
      if (this.asked.has(fileId)) void this.pass(fileId);
    }
  }
}

const links = new Map<string, BatcherLink>();

/** The run's main task queue from a role queue (`<queue>-llm-<role>`, src/workflows/queues.ts). */
function mainQueue(taskQueue: string, role: RoleName): string {
  const suffix = `-llm-${role}`;
  return taskQueue.endsWith(suffix) ? taskQueue.slice(0, -suffix.length) : taskQueue;
}

function priorBatchCalls(ctx: Context): number {
  const usage = (ctx.info.heartbeatDetails as { usage?: Usage } | undefined)?.usage;
  if (!usage || typeof usage !== 'object') return 0;
  return Object.values(usage).reduce((n, c) => n + (c?.batchCalls ?? 0), 0);
}

/**
 * A request's id: where it is asked (workflow, workflow run, activity, call index) and what it asks
 * (the request body). A retried activity asking the same thing gets the same id, so the batcher and
 * the spool answer it without a second request; one asking something else at the same index (e.g.
 * in another structured-output dialect, decided by a later probe) gets a new id instead of the
 * earlier request's stored answer or refusal.
 */
export function requestId(
  workflowId: string,
  runId: string,
  activityId: string,
  index: number,
  body: ChatCompletionCreateParamsNonStreaming,
): string {
  return crypto
    .createHash('sha256')
    .update(`${workflowId}\u0000${runId}\u0000${activityId}\u0000${index}\u0000${JSON.stringify(body)}`)
    .digest('hex')
    .slice(0, 40);
}

export function createBatchSend(role: RoleName, cfg: ResolvedRole, env: NodeJS.ProcessEnv): BatchSend {
  const files = new OutputLookup(batchSdk(cfg, env));
  return async (params, signal) => {
    let ctx: Context;
    try {
      ctx = Context.current();
    } catch {
      throw ApplicationFailure.nonRetryable(
        `role ${role}: batch mode needs a Temporal activity (it waits for its batch durably)`,
        'LlmRejected',
      );
    }
    const index = callIndex.get(ctx) ?? 0;
    callIndex.set(ctx, index + 1);
    // A retried activity asks for its requests again in the same order (same ids, same answers):
    // the first ones were counted by earlier attempts (their batch calls are in the heartbeat
    // details this attempt started with), so they are replays, not new calls.
    const replayed = index < priorBatchCalls(ctx);
    const info = ctx.info;
    const wf = info.workflowExecution ?? { workflowId: info.activityId, runId: '' };
    const id = requestId(wf.workflowId, wf.runId, info.activityId, index, params);
    const runWorkflowId = runWorkflowIdOf(wf.workflowId);
    const workflowId = batcherWorkflowId(runWorkflowId, role);
    const key = `${info.workflowNamespace}\u0000${workflowId}`;
    let link = links.get(key);
    if (!link) {
      link = new BatcherLink(workflowId, { runWorkflowId, role, cfg }, files, role, env);
      links.set(key, link);
    }
    link.client = ctx.client;
    link.taskQueue = mainQueue(info.taskQueue, role);
    const line = JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: params });
    try {
      return { completion: await link.ask({ id, line }, signal, info.attempt > 1), replayed };
    } catch (err) {
      if (err instanceof APIError) Object.assign(err, { replayed });
      throw err;
    }
  };
}
