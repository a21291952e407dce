import OpenAI, { APIError } from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ResolvedConfig, ResolvedRole, RoleName } from '../schemas/config';
import type { UsageCell } from '../schemas/records';
import { messagesFor, type ChatMessage, type StructuredPrompt, type TextPrompt } from '../tasks/task';
import type { Slots } from '../tasks/template';
import {
  classifyLlmError,
  invalidOutputFailure,
  isOverload,
  isTimeout,
  wasMalformedRequest,
  withUsageDetails,
  type LlmErrorContext,
} from './errors';
import { parseStructured, responseJsonSchema } from './json';
import type { CallOptions, LlmClient, LlmClients, LlmResult } from './types';
import { LlmFailure } from './types';
import { estimateTokens, type CallLimiter, type CallPermit } from './limiter';
import type { CallMode, StructuredDialect } from '../schemas/config';
import { createBatchSend, type BatchSend } from './batchClient';
import {
  AUTO_ORDER,
  knownDialect,
  probeAlone,
  probeOnceForBatch,
  rememberDialect,
  responseFormatFor,
  schemaInPrompt,
} from './dialect';

/**
 * The LLM boundary: one OpenAI-compatible endpoint per role, through the official openai SDK with
 * its own retries off (Temporal retries activities, with the classification in ./errors). Invalid
 * output gets a bounded number of repair calls that feed the validation error back. Structured
 * output is asked for in the role's dialect, or in auto mode in the one the server takes
 * (./dialect.ts). Every request the server answered counts in the usage, errors included; a failure
 * carries the usage so far in its details.
 */
export interface LlmClientOptions {
  /** Repair calls after invalid output (default 2). */
  repairAttempts?: number;
  /** Activity attempts for which invalid output stays retryable at the Temporal level (default 2). */
  maxInvalidAttempts?: number;
  /** Client-side rpm/tpm and adaptive concurrency around each HTTP call (./limiter.ts). */
  limiter?: CallLimiter;
  /** The Batch API transport for batch-mode stages (default: ./batchClient.ts when the role has one). */
  batchSend?: BatchSend;
}

/** Whether a stage's calls of this role go through the Batch API (`mode`, `stageModes`). */
export function callModeOf(cfg: ResolvedRole, stage: string | undefined): CallMode {
  const byStage = stage
    ? cfg.stageModes?.[stage as keyof NonNullable<ResolvedRole['stageModes']>]
    : undefined;
  return byStage ?? cfg.mode ?? 'online';
}

export function usesBatch(cfg: ResolvedRole): boolean {
  return cfg.mode === 'batch' || Object.values(cfg.stageModes ?? {}).includes('batch');
}

/** Local servers (vLLM, Ollama, llama.cpp, the simulator) accept any key; the SDK insists on one. */
const PLACEHOLDER_KEY = 'not-set';

/**
 * Within the client: `onAccepted` runs when the server answers a request with success; `online`
 * sends a request of a batch-mode stage online (the dialect probe).
 */
type InternalOptions = CallOptions & { onAccepted?: () => void; stage?: string; online?: boolean };

type Verdict<T> = { ok: true; value: T } | { ok: false; error: string; repair: string };

interface Reply {
  content: string;
  finish: string | null;
}

export function createLlmClient(
  role: RoleName,
  cfg: ResolvedRole,
  env: NodeJS.ProcessEnv = process.env,
  options: LlmClientOptions = {},
): LlmClient {
  const apiKey = env[cfg.apiKeyEnv] || PLACEHOLDER_KEY;
  const secrets = apiKey === PLACEHOLDER_KEY ? [] : [apiKey];
  const sdk = new OpenAI({ baseURL: cfg.baseURL, apiKey, maxRetries: 0, timeout: cfg.timeoutMs });
  const repairAttempts = options.repairAttempts ?? 2;
  const batchSend = options.batchSend ?? (usesBatch(cfg) ? createBatchSend(role, cfg, env) : undefined);
  const schemas = new Map<string, Record<string, unknown>>();

  function schemaOf(task: StructuredPrompt<unknown>): Record<string, unknown> {
    let s = schemas.get(task.name);
    if (!s) schemas.set(task.name, (s = responseJsonSchema(task.output)));
    return s;
  }

  /** One HTTP call; usage is added whatever the reply, errors come back classified. */
  async function call(
    messages: ChatMessage[],
    task: string,
    usage: UsageCell,
    opts: InternalOptions,
    extra: Partial<ChatCompletionCreateParamsNonStreaming>,
  ): Promise<Reply> {
    const ctx: LlmErrorContext = { role, model: cfg.model, baseURL: cfg.baseURL, task, secrets };
    if (opts.signal?.aborted) throw classifyLlmError(opts.signal.reason, ctx, opts.signal);
    const temperature = opts.temperature ?? cfg.temperature;
    // Batch mode: no rate limit and no HTTP timeout apply; the call waits for its batch.
    const viaBatch =
      batchSend && !opts.online && callModeOf(cfg, opts.stage) === 'batch' ? batchSend : undefined;
    let started = Date.now();
    let permit: CallPermit | undefined;
    try {
      if (options.limiter && !viaBatch) {
        const chars = messages.reduce((n, m) => n + m.content.length, 0);
        permit = await options.limiter.acquire(estimateTokens(chars, cfg.maxTokens), opts.signal);
        started = Date.now();
      }
      const params: ChatCompletionCreateParamsNonStreaming = {
        model: cfg.model,
        messages: messages as ChatCompletionMessageParam[],
        max_tokens: cfg.maxTokens,
        ...(temperature !== undefined ? { temperature } : {}),
        ...extra,
      };
      const batched = viaBatch ? await viaBatch(params, opts.signal) : undefined;
      const res = batched?.completion ?? (await sdk.chat.completions.create(params, { signal: opts.signal }));
      const choice = res.choices[0];
      const content = choice?.message?.content ?? '';
      // Servers that do not report usage get the same ~4 chars/token estimate the simulator uses.
      const promptTokens =
        res.usage?.prompt_tokens ?? Math.ceil(messages.reduce((n, m) => n + m.content.length, 0) / 4);
      const completionTokens = res.usage?.completion_tokens ?? Math.ceil(content.length / 4);
      // A batch answer an earlier attempt of this activity already counted is not counted again.
      if (!batched?.replayed) {
        usage.calls++;
        usage.promptTokens += promptTokens;
        usage.completionTokens += completionTokens;
      }
      if (batched && !batched.replayed) {
        usage.batchCalls = (usage.batchCalls ?? 0) + 1;
        usage.batchPromptTokens = (usage.batchPromptTokens ?? 0) + promptTokens;
        usage.batchCompletionTokens = (usage.batchCompletionTokens ?? 0) + completionTokens;
      }
      permit?.done(promptTokens + completionTokens);
      opts.onUsage?.(usage);
      opts.onAccepted?.();
      return { content, finish: choice?.finish_reason ?? null };
    } catch (err) {
      const timedOut = !viaBatch && Date.now() - started >= cfg.timeoutMs;
      // The server answered (an HTTP error status), or the request timed out while the server was
      // still working on it (it finishes, and bills, what it started): the provider served it.
      if ((err instanceof APIError && typeof err.status === 'number') || isTimeout(err, timedOut)) {
        if (!(err as { replayed?: boolean }).replayed) {
          usage.calls++;
          if (viaBatch) usage.batchCalls = (usage.batchCalls ?? 0) + 1;
        }
        opts.onUsage?.(usage);
      }
      const failure = classifyLlmError(err, { ...ctx, timedOut }, opts.signal);
      if (failure instanceof ApplicationFailure && failure.type === LlmFailure.RateLimited) {
        permit?.rateLimited(typeof failure.nextRetryDelay === 'number' ? failure.nextRetryDelay : undefined);
      } else if (isOverload(err, timedOut)) permit?.overloaded();
      else permit?.failed();
      throw failure;
    }
  }

  /**
   * Calls until `check` accepts the reply or the repairs are used up. A repair resends the prompt
   * with the bad reply and what was wrong with it (only the latest exchange, so context stays small).
   */
  async function withRepairs<T>(
    taskName: string,
    base: ChatMessage[],
    opts: InternalOptions,
    extra: Partial<ChatCompletionCreateParamsNonStreaming>,
    check: (r: Reply) => Verdict<T>,
    usage: UsageCell = { calls: 0, promptTokens: 0, completionTokens: 0 },
  ): Promise<LlmResult<T>> {
    let messages = base;
    let lastError = '';
    for (let attempt = 0; attempt <= repairAttempts; attempt++) {
      const reply = await call(messages, taskName, usage, opts, extra);
      const verdict = check(reply);
      if (verdict.ok) return { value: verdict.value, usage };
      lastError = verdict.error;
      messages = [
        ...base,
        { role: 'assistant', content: reply.content },
        { role: 'user', content: verdict.repair },
      ];
    }
    const label = opts.label ? ` (${opts.label})` : '';
    throw invalidOutputFailure({
      role,
      model: cfg.model,
      task: `${taskName}${label}`,
      error: `${lastError} [after ${repairAttempts + 1} call(s)]`,
      usage,
      maxInvalidAttempts: options.maxInvalidAttempts,
      secrets,
    });
  }

  /**
   * One structured call in the first of `dialects` the server takes: a request refused as malformed
   * moves on to the next dialect (auto mode); the last refusal is final. The dialect the server took
   * (it answered, even with invalid output) is the call's `usage.dialect` and, in auto mode, is
   * remembered for this endpoint and model.
   */
  async function inDialects<O>(
    task: StructuredPrompt<O>,
    slots: Slots,
    opts: CallOptions,
    usage: UsageCell,
    dialects: readonly StructuredDialect[],
  ): Promise<LlmResult<O>> {
    const schema = schemaOf(task as StructuredPrompt<unknown>);
    const refusals: string[] = [];
    const taken = (dialect: StructuredDialect) => {
      if (cfg.structuredOutput === 'auto') rememberDialect(cfg.baseURL, cfg.model, dialect);
      usage.dialect = dialect;
      usage.dialectAuto = cfg.structuredOutput === 'auto';
    };
    for (const [i, dialect] of dialects.entries()) {
      try {
        const result = await withRepairs(
          task.name,
          structuredMessages(task, slots, schema, dialect),
          // The server answering in this dialect decides it (even if the reply then proves invalid),
          // and callers waiting on the probe go on at once.
          { ...opts, onAccepted: () => taken(dialect) },
          responseFormatFor(dialect, task.name, schema),
          (reply) => checkStructured(task, reply),
          usage,
        );
        return { value: result.value, usage };
      } catch (err) {
        if (!wasMalformedRequest(err)) throw err;
        refusals.push(dialect);
        if (i === dialects.length - 1) throw refusedInEvery(err as ApplicationFailure, refusals);
      }
    }
    throw new Error('no structured-output dialect to try'); // unreachable: dialects is never empty
  }

  /**
   * Batch mode, auto: which dialect the endpoint takes, asked online with this call's own request
   * cut to one output token (the server validates the request shape before it generates), in each
   * dialect until one is taken. Its calls count in `usage` as online calls. Undefined when nothing
   * was decided (not a refusal: the endpoint was down, or every dialect was refused).
   */
  async function probeDialect<O>(
    task: StructuredPrompt<O>,
    slots: Slots,
    usage: UsageCell,
  ): Promise<StructuredDialect | undefined> {
    const schema = schemaOf(task as StructuredPrompt<unknown>);
    for (const dialect of AUTO_ORDER) {
      try {
        await call(
          structuredMessages(task, slots, schema, dialect),
          `${task.name} (structured-output dialect probe)`,
          usage,
          { online: true },
          { ...responseFormatFor(dialect, task.name, schema), max_tokens: 1 },
        );
        return dialect;
      } catch (err) {
        if (!wasMalformedRequest(err)) return undefined;
      }
    }
    return undefined;
  }

  function refusedInEvery(last: ApplicationFailure, refusals: string[]): Error {
    if (refusals.length < 2) return last;
    return ApplicationFailure.create({
      type: last.type ?? LlmFailure.Rejected,
      message: `${last.message} [refused in every structured-output dialect tried: ${refusals.join(', ')}]`,
      nonRetryable: true,
    });
  }

  function structuredMessages(
    task: StructuredPrompt<unknown>,
    slots: Slots,
    schema: Record<string, unknown>,
    dialect: StructuredDialect,
  ): ChatMessage[] {
    const base = messagesFor(task, slots);
    if (!schemaInPrompt(dialect)) return base;
    // Without a server-side schema (or with a weakly enforced one) the prompt carries the shape too.
    const user = base[base.length - 1]!;
    base[base.length - 1] = {
      ...user,
      content: `${user.content}\n\nReply with only a JSON object that matches the JSON schema "${task.name}" below, with no other text.\n${JSON.stringify(schema)}`,
    };
    return base;
  }

  function checkStructured<O>(task: StructuredPrompt<O>, reply: Reply): Verdict<O> {
    if (reply.finish === 'length') return { ok: false, ...truncated('JSON object') };
    const parsed = parseStructured(task.output, reply.content);
    if (parsed.ok) return parsed;
    return {
      ok: false,
      error: parsed.error,
      repair: `Your previous reply was not valid: ${parsed.error.slice(0, 1000)}\nReply again with only a JSON object that matches the JSON schema "${task.name}".`,
    };
  }

  const truncated = (what: string) => ({
    error: 'the reply was cut off at the token limit (finish_reason "length")',
    repair: `Your previous reply was cut off because it hit the length limit. Reply again with a complete but shorter ${what}.`,
  });

  return {
    role,
    model: cfg.model,

    async structured<O>(
      task: StructuredPrompt<O>,
      slots: Slots,
      opts: CallOptions = {},
    ): Promise<LlmResult<O>> {
      const usage: UsageCell = { calls: 0, promptTokens: 0, completionTokens: 0 };
      opts = { ...opts, stage: task.stage } as InternalOptions;
      try {
        if (cfg.structuredOutput !== 'auto')
          return await inDialects(task, slots, opts, usage, [cfg.structuredOutput]);
        // Batch mode: a probe through a batch would hold every other call for a whole batch
        // turnaround, so the dialect is probed online, once per endpoint and model in this process
        // (./dialect.ts, probeOnceForBatch). Undecided, each call steps down in its batches.
        if (batchSend && callModeOf(cfg, task.stage) === 'batch') {
          const known = await probeOnceForBatch(
            cfg.baseURL,
            cfg.model,
            () => probeDialect(task, slots, usage),
            opts.signal,
          );
          return await inDialects(task, slots, opts, usage, known ? [known] : AUTO_ORDER);
        }
        // Auto: the dialect this endpoint and model settled on (a refusal now is about this request,
        // not the dialect: it fails fast), or, until one is found, every dialect in turn, one
        // caller at a time.
        const decidedOrProbe = () => {
          const known = knownDialect(cfg.baseURL, cfg.model);
          return inDialects(task, slots, opts, usage, known ? [known] : AUTO_ORDER);
        };
        return await probeAlone(cfg.baseURL, cfg.model, decidedOrProbe, opts.signal);
      } catch (err) {
        throw withUsageDetails(err as Error, usage);
      }
    },

    async text(task: TextPrompt, slots: Slots, opts: CallOptions = {}): Promise<LlmResult<string>> {
      const usage: UsageCell = { calls: 0, promptTokens: 0, completionTokens: 0 };
      const check = (reply: Reply): Verdict<string> => {
        // A cut-off answer would teach the target to stop mid-sentence: never kept silently.
        if (reply.finish === 'length') return { ok: false, ...truncated('answer') };
        if (!reply.content.trim())
          return {
            ok: false,
            error: 'the reply was empty',
            repair: 'Your previous reply was empty. Please answer the request.',
          };
        return { ok: true, value: reply.content };
      };
      try {
        const withStage: InternalOptions = { ...opts, stage: task.stage };
        return await withRepairs(task.name, messagesFor(task, slots), withStage, {}, check, usage);
      } catch (err) {
        throw withUsageDetails(err as Error, usage);
      }
    },
  };
}

export function createLlmClients(
  cfg: ResolvedConfig,
  env: NodeJS.ProcessEnv = process.env,
  options: LlmClientOptions = {},
): LlmClients {
  const opts = { repairAttempts: cfg.limits.repairAttempts, ...options };
  return {
    strong: createLlmClient('strong', cfg.roles.strong, env, opts),
    target: createLlmClient('target', cfg.roles.target, env, opts),
    judge: createLlmClient('judge', cfg.roles.judge, env, opts),
  };
}
