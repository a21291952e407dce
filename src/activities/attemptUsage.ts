import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { addUsage, type Usage } from '../schemas/records';

/**
 * The one heartbeat mechanism of codeclm activities, and how LLM usage survives failed attempts.
 *
 * A provider bills every request it answered, also those of an activity attempt that then failed
 * (a 5xx after two repairs, invalid output). Temporal hands a failed attempt's last heartbeat
 * details to the next attempt (`info.heartbeatDetails`; the SDK sends the latest details with the
 * failure, test/attemptUsage.test.ts checks it on a real worker), so every heartbeat carries
 * `{usage}`: all the calls of this and earlier attempts. Then:
 * - a successful attempt reports that usage in its result (deps.ts takes it);
 * - a failed attempt's failure carries it in its details (`[{usage}]`), for the workflow to count
 *   when the failure is final (usageInFailure in src/schemas/records.ts);
 * - a retried attempt starts from the earlier attempts' usage.
 *
 * Heartbeats without details would wipe what the server keeps, so every heartbeat goes through
 * here: the worker's interceptor beats every 2 s with the current details (so a killed worker's
 * activities move elsewhere within the heartbeat timeout), and LLM calls beat as usage grows.
 */
export interface HeartbeatDetails {
  usage: Usage;
}

interface AttemptState {
  /** Usage of earlier attempts (from the heartbeat details this attempt started with). */
  prior: Usage;
  /** Whether a result of this attempt has reported `prior` already. */
  priorReported: boolean;
  /** Usage of the calls of this attempt, finished or running, keyed by call. */
  calls: Usage[];
}

const states = new WeakMap<Context, AttemptState>();

function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not in an activity (tests, benchmarks call activities directly)
  }
}

function stateOf(ctx: Context): AttemptState {
  let state = states.get(ctx);
  if (!state) {
    const prior = (ctx.info.heartbeatDetails as Partial<HeartbeatDetails> | null | undefined)?.usage;
    state = {
      prior: addUsage({}, prior && typeof prior === 'object' ? prior : undefined),
      priorReported: false,
      calls: [],
    };
    states.set(ctx, state);
  }
  return state;
}

/** Earlier attempts' usage plus every call of this one: what a failure of this attempt leaves behind. */
function attemptTotal(state: AttemptState): Usage {
  const total = addUsage({}, state.prior);
  for (const u of state.calls) addUsage(total, u);
  return total;
}

function beat(ctx: Context, state: AttemptState): void {
  const details: HeartbeatDetails = { usage: attemptTotal(state) };
  ctx.heartbeat(details);
}

/**
 * Tracks one LLM call of the current activity: `progress(usage)` after every answered request (the
 * call's running usage, keyed "stage/role"), `finish(usage)` for the usage its result reports
 * (earlier attempts' included, once per attempt). Outside an activity it hands the usage back.
 */
export function trackCall(): { progress(usage: Usage): void; finish(usage: Usage): Usage } {
  const ctx = currentContext();
  if (!ctx) return { progress: () => undefined, finish: (usage) => usage };
  const state = stateOf(ctx);
  const slot = state.calls.push({}) - 1;
  return {
    progress(usage) {
      state.calls[slot] = structuredClone(usage);
      beat(ctx, state);
    },
    finish(usage) {
      state.calls[slot] = structuredClone(usage);
      beat(ctx, state);
      const reported = addUsage(state.priorReported ? {} : structuredClone(state.prior), usage);
      state.priorReported = true;
      return reported;
    },
  };
}

/**
 * The failure with every unreported call of this and earlier attempts in its details (`[{usage}]`):
 * once an attempt fails, none of its results reached the workflow. Plain errors become the
 * ApplicationFailure the SDK would have made of them (type = the error's name), plus the details.
 */
export function failureWithUsage(err: unknown): unknown {
  const ctx = currentContext();
  if (!ctx || !(err instanceof Error) || err instanceof CancelledFailure) return err;
  const state = stateOf(ctx);
  beat(ctx, state);
  const usage = attemptTotal(state);
  if (Object.keys(usage).length === 0) return err;
  const failure = err instanceof ApplicationFailure ? err : undefined;
  const copy = ApplicationFailure.create({
    type: failure ? (failure.type ?? undefined) : err.name,
    message: err.message,
    nonRetryable: failure?.nonRetryable ?? false,
    nextRetryDelay: failure?.nextRetryDelay ?? undefined,
    cause: failure ? failure.cause : undefined,
    details: [{ usage } satisfies HeartbeatDetails],
  });
  if (!failure) copy.stack = err.stack;
  return copy;
}

/**
 * Every activity heartbeats every 2 s while it runs (with the details above), so that with the
 * workflows' heartbeat timeouts (src/workflows/activities.ts) a SIGKILLed worker's activities (file
 * ones too, which never heartbeat themselves) are retried elsewhere within seconds instead of after
 * their start-to-close timeout. A failure leaves with the usage it did not report.
 */
export const autoHeartbeat: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const state = stateOf(ctx);
      const timer = setInterval(() => beat(ctx, state), 2_000);
      try {
        return await next(input);
      } catch (err) {
        throw failureWithUsage(err);
      } finally {
        clearInterval(timer);
      }
    },
  },
});
