import { Context } from '@temporalio/activity';
import type { ResolvedRole, RoleName } from '../schemas/config';
import type { LlmClient, LlmResult } from '../llm/types';
import type { Slots } from '../tasks/template';
import type { StructuredTask, TextTask } from '../tasks/task';
import type { Usage } from '../schemas/records';
import { usageKey } from '../schemas/records';

/**
 * What activities need from the outside world, injected so tests and benchmarks can swap in the
 * simulator (or anything else) without monkey-patching.
 */
export interface ActivityDeps {
  /** An LLM client for a role's (keyless) config; the factory reads the key from its own env. */
  llm(role: RoleName, cfg: ResolvedRole): LlmClient;
  now(): number;
}

/** The cancellation signal when running as an activity; undefined when called directly. */
export function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

export interface LlmCallInput {
  role: RoleName;
  cfg: ResolvedRole;
  temperature: number;
  label: string;
}

function usageOf(stage: string, role: RoleName, result: LlmResult<unknown>): Usage {
  return { [usageKey(stage, role)]: result.usage };
}

export async function callStructured<O>(
  deps: ActivityDeps,
  task: StructuredTask<O>,
  call: LlmCallInput,
  slots: Slots,
): Promise<{ value: O; usage: Usage }> {
  const client = deps.llm(call.role, call.cfg);
  const result = await withHeartbeat(() =>
    client.structured(task, slots, {
      temperature: call.cfg.temperature ?? call.temperature,
      signal: activitySignal(),
      label: call.label,
    }),
  );
  return { value: result.value, usage: usageOf(task.stage, call.role, result) };
}

export async function callText(
  deps: ActivityDeps,
  task: TextTask,
  call: LlmCallInput,
  slots: Slots,
): Promise<{ value: string; usage: Usage }> {
  const client = deps.llm(call.role, call.cfg);
  const result = await withHeartbeat(() =>
    client.text(task, slots, {
      temperature: call.cfg.temperature ?? call.temperature,
      signal: activitySignal(),
      label: call.label,
    }),
  );
  return { value: result.value, usage: usageOf(task.stage, call.role, result) };
}

/**
 * Heartbeats while a long call runs, so a worker killed mid-call is noticed within the heartbeat
 * timeout (not the much longer start-to-close timeout) and the call is retried elsewhere.
 */
export async function withHeartbeat<T>(fn: () => Promise<T>, everyMs = 5_000): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return fn();
  }
  const timer = setInterval(() => ctx.heartbeat(), everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
