import { Context } from '@temporalio/activity';
import type { ResolvedRole, RoleName } from '../schemas/config';
import type { CallOptions, LlmClient, LlmResult } from '../llm/types';
import type { Slots } from '../tasks/template';
import type { StructuredPrompt, TextPrompt } from '../tasks/task';
import type { Usage, UsageCell } from '../schemas/records';
import { failureWithUsage, trackCall } from './attemptUsage';
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

function usageOf(stage: string, role: RoleName, cell: UsageCell): Usage {
  return { [usageKey(stage, role)]: { ...cell } };
}

/**
 * One LLM call from an activity. Its usage is tracked as it grows (src/activities/attemptUsage.ts):
 * the result reports it with any earlier failed attempts' usage, and a failure carries it in its
 * details, so every request the provider answered is counted once.
 */
async function tracked<T>(
  stage: string,
  call: LlmCallInput,
  run: (opts: CallOptions) => Promise<LlmResult<T>>,
): Promise<{ value: T; usage: Usage }> {
  const track = trackCall();
  try {
    const result = await run({
      temperature: call.cfg.temperature ?? call.temperature,
      signal: activitySignal(),
      label: call.label,
      onUsage: (cell) => track.progress(usageOf(stage, call.role, cell)),
    });
    return { value: result.value, usage: track.finish(usageOf(stage, call.role, result.usage)) };
  } catch (err) {
    throw failureWithUsage(err);
  }
}

export async function callStructured<O>(
  deps: ActivityDeps,
  task: StructuredPrompt<O>,
  call: LlmCallInput,
  slots: Slots,
): Promise<{ value: O; usage: Usage }> {
  const client = deps.llm(call.role, call.cfg);
  return tracked(task.stage, call, (opts) => client.structured(task, slots, opts));
}

export async function callText(
  deps: ActivityDeps,
  task: TextPrompt,
  call: LlmCallInput,
  slots: Slots,
): Promise<{ value: string; usage: Usage }> {
  const client = deps.llm(call.role, call.cfg);
  return tracked(task.stage, call, (opts) => client.text(task, slots, opts));
}
