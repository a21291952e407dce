import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { createBatchSend, requestId } from '../src/llm/batchClient';
import {
  BATCHER_WORKFLOW,
  batcherWorkflowId,
  OUTCOMES_QUERY,
  type BatcherInput,
  type OutcomeView,
} from '../src/batch/protocol';
import { spoolKeys, spoolStore } from '../src/batch/spool';
import type { ResolvedRole } from '../src/schemas/config';
import { callBatchAsActivity, useBatchTestbed } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';
import { startTestMinio, type TestMinio } from './helpers/s3minio';
import { holdOpen, releaseSignal } from './workflows/holdOpen';

/**
 * The batch spool (src/batch/spool.ts) on a real dev server, a real batcher workflow and the
 * simulator's Batch API. The batch-mode calls run as activities would (a mocked activity context
 * with the real client), so a test can retry one "late" with the very request id it had.
 */
const bed = useBatchTestbed('spool', 7);

function judgeRole(spool: string, over: Partial<NonNullable<ResolvedRole['batch']>> = {}): ResolvedRole {
  return simRole(bed.sim.url, { mode: 'batch', batch: { ...fastBatchSettings, spool, ...over } });
}

/** A run that stays open while its batcher works; released at the end of a test. */
async function openRun(name: string): Promise<{ runId: string; release(): Promise<void> }> {
  const runId = `${name}-${Date.now().toString(36)}`;
  const h = await bed.w.client.workflow.start(holdOpen, { workflowId: runId, taskQueue: bed.w.taskQueue });
  return { runId, release: () => h.signal(releaseSignal) };
}

/** One batch-mode call of an entry of `runId` (test/helpers/batchCalls.ts). */
function callAsActivity(
  runId: string,
  activityId: string,
  role: ResolvedRole,
  params: ChatCompletionCreateParamsNonStreaming,
  attempt = 1,
) {
  return callBatchAsActivity(bed.w, createBatchSend, { runId, activityId, role, params, attempt });
}

function question(i: number, padding: number): ChatCompletionCreateParamsNonStreaming {
  const filler = `Context line ${i}: the quick brown fox jumps over the lazy dog. `.repeat(padding);
  return {
    model: 'sim-strong',
    max_tokens: 64,
    messages: [{ role: 'user', content: `${filler}\nQuestion ${i}: explain batch files in one sentence.` }],
  };
}

test('a batch file larger than 2 MB: lines go through the spool, answers equal the online ones', async () => {
  const spool = tmpDir('codeclm-spool-');
  const run = await openRun('spool-big');
  const role = judgeRole(spool, { maxRequests: 1000, maxBytes: 100_000_000, maxWaitSeconds: 1 });
  const before = bed.sim.stats().batch;
  const n = 240;
  try {
    const params = Array.from({ length: n }, (_, i) => question(i, 150)); // ~10 KB each
    const results = await Promise.all(params.map((p, i) => callAsActivity(run.runId, `a${i}`, role, p)));

    const stats = bed.sim.stats().batch;
    expect(stats.batchesCreated - before.batchesCreated).toBe(1);
    expect(stats.requests - before.requests).toBe(n);
    const openai = new OpenAI({ baseURL: bed.sim.url, apiKey: 'sk-sim', maxRetries: 0 });
    const uploaded: number[] = [];
    for await (const f of openai.files.list({ purpose: 'batch' })) uploaded.push(f.bytes);
    expect(Math.max(...uploaded)).toBeGreaterThan(2 * 1024 * 1024);

    // The same requests online: the simulator is deterministic, so the answers must be equal.
    for (let i = 0; i < n; i += 40) {
      const online = await openai.chat.completions.create(params[i]!);
      expect(results[i]!.completion.choices[0]!.message.content).toBe(online.choices[0]!.message.content);
    }
    // No request line went through the batcher's history: it stays small and holds no prompt.
    const history = await bed.w.client.workflow
      .getHandle(batcherWorkflowId(run.runId, 'judge'))
      .fetchHistory();
    const text = JSON.stringify(history);
    expect(text).not.toContain('quick brown fox');
    expect(text.length).toBeLessThan(200_000);
    expect(fs.readdirSync(path.join(spool, 'requests')).length).toBeGreaterThan(0);
  } finally {
    await run.release();
  }
}, 120_000);

/**
 * The run's judge batcher, started ahead of its first call so that it continues-as-new after 30
 * history events (instead of 5,000), dropping what it holds: "later" is then seconds away.
 */
function startForgetfulBatcher(runId: string, role: ResolvedRole) {
  const input: BatcherInput = {
    runWorkflowId: runId,
    role: 'judge',
    cfg: role,
    tuning: { maxHistoryEvents: 30 },
  };
  return bed.w.client.workflow.start(BATCHER_WORKFLOW, {
    workflowId: batcherWorkflowId(runId, 'judge'),
    taskQueue: bed.w.taskQueue,
    args: [input],
  });
}

/**
 * One call answered by a batch, the batcher made to forget it (continue-as-new), then the same
 * call retried: answered from the spool at `spool`, with nothing new at the provider.
 */
async function lateRetry(spool: string): Promise<void> {
  const run = await openRun('spool-late');
  const role = judgeRole(spool);
  const batcherId = batcherWorkflowId(run.runId, 'judge');
  const batcher = await startForgetfulBatcher(run.runId, role);
  try {
    const params = question(1, 2);
    const first = await callAsActivity(run.runId, 'late-1', role, params);
    const afterFirst = bed.sim.stats().batch;

    // Wait until the batcher has continued as new and no longer knows the request.
    const id = requestId(`${run.runId}/r1-e00000`, 'entry-run-1', 'late-1', 0, params);
    const deadline = Date.now() + 60_000;
    let view: OutcomeView | undefined;
    for (;;) {
      const views = await bed.w.client.workflow
        .getHandle(batcherId)
        .query<Record<string, OutcomeView>, [string[]]>(OUTCOMES_QUERY, [id]);
      view = views[id];
      if (view?.state === 'unknown' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(view?.state).toBe('unknown');
    expect((await batcher.describe()).runId).not.toBe(batcher.firstExecutionRunId);
    const store = spoolStore(spool);
    expect(await store.exists(spoolKeys.outcome(id))).toBe(true);
    expect((await store.list('requests')).length).toBeGreaterThan(0);

    // The retried activity: same request id, answered from the spool; nothing new at the provider.
    const retried = await callAsActivity(run.runId, 'late-1', role, params, 2);
    expect(retried.completion.choices[0]!.message.content).toBe(first.completion.choices[0]!.message.content);
    const afterRetry = bed.sim.stats().batch;
    expect(afterRetry.batchesCreated).toBe(afterFirst.batchesCreated);
    expect(afterRetry.requests).toBe(afterFirst.requests);
  } finally {
    await run.release();
  }
}

test('a call retried after its batcher forgot the outcome gets it from the spool, not a new batch', async () => {
  await lateRetry(tmpDir('codeclm-spool-late-'));
}, 120_000);

test('a retry that asks something else at the same call index is a new request, not the stored answer', async () => {
  const spool = tmpDir('codeclm-spool-other-');
  const run = await openRun('spool-other');
  const role = judgeRole(spool);
  try {
    const first = await callAsActivity(run.runId, 'other-1', role, question(4, 1));
    const before = bed.sim.stats().batch;
    // Attempt 2 of the same activity, call 0, with another body (as when a later probe settles
    // on another structured-output dialect): answered for what it asks, by one more request.
    const retried = await callAsActivity(run.runId, 'other-1', role, question(5, 1), 2);
    const fresh = await callAsActivity(run.runId, 'other-2', role, question(5, 1));
    expect(retried.completion.choices[0]!.message.content).toBe(fresh.completion.choices[0]!.message.content);
    expect(retried.completion.choices[0]!.message.content).not.toBe(
      first.completion.choices[0]!.message.content,
    );
    expect(bed.sim.stats().batch.requests).toBe(before.requests + 2);
  } finally {
    await run.release();
  }
}, 120_000);

test('an outcome deleted from the spool fails only its own retried call, at once, with the reason', async () => {
  const spool = tmpDir('codeclm-spool-gone-');
  const run = await openRun('spool-gone');
  const role = judgeRole(spool);
  try {
    await callAsActivity(run.runId, 'gone-1', role, question(2, 1));
    const id = requestId(`${run.runId}/r1-e00000`, 'entry-run-1', 'gone-1', 0, question(2, 1));
    fs.rmSync(path.join(spool, spoolKeys.outcome(id)));

    // The batcher still knows the request as stored: its retry must fail with the spool's reason
    // (not, seconds later, as "batcher unreachable"), and a call waiting beside it is still answered.
    const [retried, other] = await Promise.allSettled([
      callAsActivity(run.runId, 'gone-1', role, question(2, 1), 2),
      callAsActivity(run.runId, 'gone-2', role, question(3, 1)),
    ]);
    expect(retried.status).toBe('rejected');
    const err = (retried as PromiseRejectedResult).reason as { type?: string; message: string };
    expect(err.type).toBe('BatchSpoolMissing');
    expect(err.message).toContain(`batch request ${id}: outcome missing at ${spool}`);
    expect(other.status).toBe('fulfilled');
  } finally {
    await run.release();
  }
}, 120_000);

test('the resubmission bound holds while the batcher continues-as-new with the batch open', async () => {
  const spool = tmpDir('codeclm-spool-bound-');
  const run = await openRun('spool-bound');
  const role = judgeRole(spool, { maxResubmits: 2 });
  const batcher = await startForgetfulBatcher(run.runId, role);
  try {
    const params = question(6, 1);
    const id = requestId(`${run.runId}/r1-e00000`, 'entry-run-1', 'bound-1', 0, params);
    // The provider fails this line in its next six batches: the bound must stop it after three.
    const faults = await fetch(`${bed.sim.url.replace(/\/v1$/, '')}/_sim/batch-faults`, {
      method: 'POST',
      body: JSON.stringify({ failLines: Array.from({ length: 6 }, () => id) }),
    });
    expect(faults.status).toBe(200);
    const before = bed.sim.stats().batch;

    const call = callAsActivity(run.runId, 'bound-1', role, params);
    await expect(call).rejects.toThrow(`batch request ${id} failed`);
    await expect(call).rejects.toThrow('(in 3 batch(es); 2 resubmission(s) allowed)');
    expect(bed.sim.stats().batch.failedRequests - before.failedRequests).toBe(3);
    // The batcher did continue-as-new (more than once) while the line went round.
    expect((await batcher.describe()).runId).not.toBe(batcher.firstExecutionRunId);
  } finally {
    await run.release();
  }
}, 120_000);

describe('the spool on object storage (s3://, MinIO)', () => {
  let minio: TestMinio;
  beforeAll(async () => {
    minio = await startTestMinio();
    Object.assign(process.env, minio.env);
  }, 120_000);
  afterAll(async () => {
    await minio?.stop();
  });

  test('the same late retry with the spool at s3://bucket/prefix', async () => {
    await lateRetry(`s3://${minio.bucket}/spool-${Date.now().toString(36)}`);
  }, 120_000);
});
