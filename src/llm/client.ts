import OpenAI from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ResolvedConfig, ResolvedRole, RoleName } from '../schemas/config';
import type { UsageCell } from '../schemas/records';
import { messagesFor, type ChatMessage, type StructuredTask, type TextTask } from '../tasks/task';
import type { Slots } from '../tasks/template';
import { classifyLlmError, invalidOutputFailure, type LlmErrorContext } from './errors';
import { parseStructured, responseJsonSchema } from './json';
import type { CallOptions, LlmClient, LlmClients, LlmResult } from './types';
import { LlmFailure } from './types';
import { estimateTokens, type CallLimiter, type CallPermit } from './limiter';

/**
 * The LLM boundary: one OpenAI-compatible endpoint per role, through the official openai SDK with
 * its own retries off (Temporal retries activities, with the classification in ./errors). Invalid
 * output gets a bounded number of repair calls that feed the validation error back.
 */
export interface LlmClientOptions {
  /** Repair calls after invalid output (default 2). */
  repairAttempts?: number;
  /** Activity attempts for which invalid output stays retryable at the Temporal level (default 2). */
  maxInvalidAttempts?: number;
  /** Client-side rpm/tpm and adaptive concurrency around each HTTP call (./limiter.ts). */
  limiter?: CallLimiter;
}

/** Local servers (vLLM, Ollama, llama.cpp, the simulator) accept any key; the SDK insists on one. */
const PLACEHOLDER_KEY = 'not-set';

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
  const schemas = new Map<string, Record<string, unknown>>();

  function schemaOf(task: StructuredTask<unknown>): Record<string, unknown> {
    let s = schemas.get(task.name);
    if (!s) schemas.set(task.name, (s = responseJsonSchema(task.output)));
    return s;
  }

  /** One HTTP call; usage is added whatever the reply, errors come back classified. */
  async function call(
    messages: ChatMessage[],
    task: string,
    usage: UsageCell,
    opts: CallOptions,
    extra: Partial<ChatCompletionCreateParamsNonStreaming>,
  ): Promise<Reply> {
    const ctx: LlmErrorContext = { role, model: cfg.model, baseURL: cfg.baseURL, task, secrets };
    if (opts.signal?.aborted) throw classifyLlmError(opts.signal.reason, ctx, opts.signal);
    const temperature = opts.temperature ?? cfg.temperature;
    let started = Date.now();
    let permit: CallPermit | undefined;
    try {
      if (options.limiter) {
        const chars = messages.reduce((n, m) => n + m.content.length, 0);
        permit = await options.limiter.acquire(estimateTokens(chars, cfg.maxTokens), opts.signal);
        started = Date.now();
      }
      const res = await sdk.chat.completions.create(
        {
          model: cfg.model,
          messages: messages as ChatCompletionMessageParam[],
          max_tokens: cfg.maxTokens,
          ...(temperature !== undefined ? { temperature } : {}),
          ...extra,
        },
        { signal: opts.signal },
      );
      const choice = res.choices[0];
      const content = choice?.message?.content ?? '';
      usage.calls++;
      // Servers that do not report usage get the same ~4 chars/token estimate the simulator uses.
      const promptTokens =
        res.usage?.prompt_tokens ?? Math.ceil(messages.reduce((n, m) => n + m.content.length, 0) / 4);
      const completionTokens = res.usage?.completion_tokens ?? Math.ceil(content.length / 4);
      usage.promptTokens += promptTokens;
      usage.completionTokens += completionTokens;
      permit?.done(promptTokens + completionTokens);
      return { content, finish: choice?.finish_reason ?? null };
    } catch (err) {
      const failure = classifyLlmError(
        err,
        { ...ctx, timedOut: Date.now() - started >= cfg.timeoutMs },
        opts.signal,
      );
      if (failure instanceof ApplicationFailure && failure.type === LlmFailure.RateLimited) {
        permit?.rateLimited(typeof failure.nextRetryDelay === 'number' ? failure.nextRetryDelay : undefined);
      } else permit?.failed();
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
    opts: CallOptions,
    extra: Partial<ChatCompletionCreateParamsNonStreaming>,
    check: (r: Reply) => { ok: true; value: T } | { ok: false; error: string; repair: string },
  ): Promise<LlmResult<T>> {
    const usage: UsageCell = { calls: 0, promptTokens: 0, completionTokens: 0 };
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

  const truncated = (what: string) => ({
    error: 'the reply was cut off at the token limit (finish_reason "length")',
    repair: `Your previous reply was cut off because it hit the length limit. Reply again with a complete but shorter ${what}.`,
  });

  return {
    role,
    model: cfg.model,

    async structured<O>(
      task: StructuredTask<O>,
      slots: Slots,
      opts: CallOptions = {},
    ): Promise<LlmResult<O>> {
      const schema = schemaOf(task as StructuredTask<unknown>);
      const base = messagesFor(task, slots);
      let extra: Partial<ChatCompletionCreateParamsNonStreaming> = {};
      if (cfg.structuredOutput === 'json_schema') {
        extra = {
          response_format: { type: 'json_schema', json_schema: { name: task.name, schema, strict: true } },
        };
      } else {
        // Without server-side schemas the prompt has to carry the shape.
        const user = base[base.length - 1]!;
        base[base.length - 1] = {
          ...user,
          content: `${user.content}\n\nReply with only a JSON object that matches the JSON schema "${task.name}" below, with no other text.\n${JSON.stringify(schema)}`,
        };
        if (cfg.structuredOutput === 'json_object') extra = { response_format: { type: 'json_object' } };
      }
      return withRepairs(task.name, base, opts, extra, (reply) => {
        if (reply.finish === 'length') return { ok: false, ...truncated('JSON object') };
        const parsed = parseStructured(task.output, reply.content);
        if (parsed.ok) return parsed;
        return {
          ok: false,
          error: parsed.error,
          repair: `Your previous reply was not valid: ${parsed.error.slice(0, 1000)}\nReply again with only a JSON object that matches the JSON schema "${task.name}".`,
        };
      });
    },

    async text(task: TextTask, slots: Slots, opts: CallOptions = {}): Promise<LlmResult<string>> {
      return withRepairs(task.name, messagesFor(task, slots), opts, {}, (reply) => {
        // A cut-off answer would teach the target to stop mid-sentence: never kept silently.
        if (reply.finish === 'length') return { ok: false, ...truncated('answer') };
        if (!reply.content.trim())
          return {
            ok: false,
            error: 'the reply was empty',
            repair: 'Your previous reply was empty. Please answer the request.',
          };
        return { ok: true, value: reply.content };
      });
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
