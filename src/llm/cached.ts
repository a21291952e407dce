import type { ResolvedRole, RoleName } from '../schemas/config';
import type { UsageCell } from '../schemas/records';
import { messagesFor, type StructuredPrompt, type Prompt, type TextPrompt } from '../tasks/task';
import type { Slots } from '../tasks/template';
import { cacheKey, type CacheStore } from '../cache/store';
import type { CallOptions, LlmClient, LlmResult } from './types';

/**
 * The LLM client with a content-addressed result cache in front (src/cache/store.ts).
 *
 * The key is the sha256 of a canonical JSON of everything that changes the answer: role, model,
 * baseURL, temperature, max tokens, the structured-output mode and schema (task) name, and the
 * request messages. It never holds the API key (the client reads that from its env, and only the
 * env var's NAME is in the role config, which is not part of the key either).
 *
 * Only results the inner client returned (so: successful, and validated against the task's schema)
 * are stored; errors and invalid output never are. A hit is validated again with the task's schema
 * and costs no call and no token: its usage is `{calls: 0, tokens 0, cacheHits: 1}`.
 *
 * Caching answers sampled at temperature > 0 is deliberate: a cached run is reproducible and a
 * refresh pays only for what changed. Turn the cache off (CODECLM_CACHE=off, or `cache.enabled:
 * false`) for fresh samples.
 */
export const CACHE_FORMAT = 1;

export function llmCacheKey(
  role: RoleName,
  cfg: ResolvedRole,
  kind: 'structured' | 'text',
  task: Prompt,
  slots: Slots,
  opts: CallOptions,
): string {
  return cacheKey({
    format: CACHE_FORMAT,
    role,
    model: cfg.model,
    baseURL: cfg.baseURL,
    temperature: opts.temperature ?? cfg.temperature ?? null,
    maxTokens: cfg.maxTokens,
    responseFormat: kind === 'structured' ? cfg.structuredOutput : 'text',
    schema: kind === 'structured' ? task.name : null,
    task: task.name,
    messages: messagesFor(task, slots),
  });
}

const hitUsage = (): UsageCell => ({ calls: 0, promptTokens: 0, completionTokens: 0, cacheHits: 1 });

export function withCache(inner: LlmClient, role: RoleName, cfg: ResolvedRole, store: CacheStore): LlmClient {
  const about = (task: { name: string }) => ({ role, model: cfg.model, task: task.name });
  const safePut = async (key: string, value: unknown, task: { name: string }) => {
    try {
      // Locally, and in the shared tier (cache.store) when there is one.
      await store.keep(key, value, about(task));
    } catch {
      // A full or read-only disk must not fail a call that succeeded: the result just is not kept.
    }
  };
  return {
    role: inner.role,
    model: inner.model,

    async structured<O>(
      task: StructuredPrompt<O>,
      slots: Slots,
      opts: CallOptions = {},
    ): Promise<LlmResult<O>> {
      const key = llmCacheKey(role, cfg, 'structured', task, slots, opts);
      const hit = await store.lookup<unknown>(key);
      if (hit) {
        const parsed = task.output.safeParse(hit.value);
        if (parsed.success) return { value: parsed.data, usage: hitUsage() };
      }
      const result = await inner.structured(task, slots, opts);
      await safePut(key, result.value, task);
      return result;
    },

    async text(task: TextPrompt, slots: Slots, opts: CallOptions = {}): Promise<LlmResult<string>> {
      const key = llmCacheKey(role, cfg, 'text', task, slots, opts);
      const hit = await store.lookup<unknown>(key);
      if (hit && typeof hit.value === 'string' && hit.value.trim())
        return { value: hit.value, usage: hitUsage() };
      const result = await inner.text(task, slots, opts);
      await safePut(key, result.value, task);
      return result;
    },
  };
}
