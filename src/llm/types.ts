import type { Slots } from '../tasks/template';
import type { StructuredPrompt, TextPrompt } from '../tasks/task';
import type { UsageCell } from '../schemas/records';

/**
 * The LLM boundary as the activities see it: one client per role. Implementations throw
 * ApplicationFailure (from @temporalio/common) classified for Temporal retries; see src/llm/errors.ts.
 */
export interface CallOptions {
  temperature?: number;
  /** Aborts the HTTP request (activities pass their cancellation signal). */
  signal?: AbortSignal;
  /** For error messages and logs: what this call is for, e.g. "encode seed s-12". Never secret. */
  label?: string;
  /** Called after every request the server answered, with the running usage of this call. */
  onUsage?: (usage: UsageCell) => void;
}

export interface LlmResult<T> {
  value: T;
  /** Every HTTP call this made, repairs included. */
  usage: UsageCell;
}

export interface LlmClient {
  readonly role: string;
  readonly model: string;
  structured<O>(task: StructuredPrompt<O>, slots: Slots, opts?: CallOptions): Promise<LlmResult<O>>;
  text(task: TextPrompt, slots: Slots, opts?: CallOptions): Promise<LlmResult<string>>;
}

export type LlmClients = Record<'strong' | 'target' | 'judge', LlmClient>;

/** Failure types (ApplicationFailure.type) the boundary throws; retry policies key on these. */
export const LlmFailure = {
  RateLimited: 'LlmRateLimited',
  Unavailable: 'LlmUnavailable',
  Connection: 'LlmConnection',
  Rejected: 'LlmRejected',
  ContextLength: 'LlmContextLength',
  InvalidOutput: 'LlmInvalidOutput',
} as const;
export const nonRetryableLlmFailures = [LlmFailure.Rejected, LlmFailure.ContextLength] as const;
