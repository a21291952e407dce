import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { createBatchActivities } from '../src/batch/activities';
import { createBatchSend } from '../src/llm/batchClient';
import type { ResolvedRole } from '../src/schemas/config';
import {
  BATCHER_WORKFLOW,
  batcherWorkflowId,
  OPEN_BATCHES_QUERY,
  type BatcherInput,
  type BatcherView,
} from '../src/batch/protocol';
import { startSimulator } from '../src/sim/server';
import { callBatchAsActivity, FAST_SIM_BATCH, shortQuestion, useBatchTestbed } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';
import { endSignal, pausableRun, pauseSignal, queryFailsSignal } from './workflows/pausable';

/**
 * Batch mode under faults: a provider that did what it was asked but whose answer never arrived
 * (the simulator behind a proxy that loses answers); two attempts of one activity waiting in one
 * worker process. A real dev server, a real batcher workflow and the simulator's Batch API.
 */
const bed = useBatchTestbed('faults', 11, require.resolve('./workflows/pausable'));

/**
 * A proxy to the simulator that forwards every request but answers the first `lose` requests
 * matching `lost` with a 500 after the simulator has handled them: the provider acted, the client
 * saw an error (as when a gateway times out on a create that went through).
 */
async function lossyProxy(
  target: string,
  lost: (method: string, url: string) => boolean,
  lose: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fwd = http.request(
        { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            if (lose > 0 && lost(req.method ?? '', req.url ?? '')) {
              lose--;
              res.writeHead(500, { 'content-type': 'application/json' });
              return res.end(JSON.stringify({ error: { message: 'proxy lost the answer' } }));
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      fwd.on('error', () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function line(id: string): string {
  const body = shortQuestion(`say ${id}`);
  return JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body });
}

test('a batch create that went through but whose answer was lost creates no second batch', async () => {
  const proxy = await lossyProxy(bed.sim.url, (m, url) => m === 'POST' && url.endsWith('/batches'), 1);
  try {
    const cfg = simRole(proxy.url, { mode: 'batch', batch: { ...fastBatchSettings, spool: tmpDir() } });
    const { batchSubmit } = createBatchActivities(process.env);
    const key = `lost-create-${Date.now()}#0`;
    const input = { cfg, key, spool: cfg.batch!.spool, lines: [line('q1'), line('q2')], parts: [] };
    const before = bed.sim.stats().batch.batchesCreated;
    // The activity as Temporal runs it: attempts until one returns.
    let submitted: Awaited<ReturnType<typeof batchSubmit>> | undefined;
    for (let attempt = 1; !submitted && attempt <= 3; attempt++)
      submitted = await batchSubmit(input).catch(() => undefined);
    expect(bed.sim.stats().batch.batchesCreated - before).toBe(1);
    expect(submitted?.createdNow).toBe(false); // the retry found the batch the lost answer was about
  } finally {
    await proxy.close();
  }
}, 60_000);

/** A run that stays open (and can be paused) while its batcher works; released at the end of a test. */
async function openRun(name: string) {
  const runId = `${name}-${Date.now().toString(36)}`;
  const h = await bed.w.client.workflow.start(pausableRun, { workflowId: runId, taskQueue: bed.w.taskQueue });
  return {
    runId,
    pause: (paused: boolean) => h.signal(pauseSignal, paused),
    queryFails: (fails: boolean) => h.signal(queryFailsSignal, fails),
    release: () => h.signal(endSignal),
  };
}

/** Attempt `attempt` of activity `activityId` making its first batch-mode judge call, abortable. */
function attemptCall(
  runId: string,
  activityId: string,
  role: ResolvedRole,
  params: ChatCompletionCreateParamsNonStreaming,
  attempt: number,
  signal?: AbortSignal,
) {
  return callBatchAsActivity(bed.w, createBatchSend, { runId, activityId, role, params, attempt, signal });
}

test('an attempt that timed out and is cancelled after its retry began in the same worker does not strand the retry', async () => {
  const run = await openRun('faults-twice');
  // Gathered for 2 s: both attempts wait while the request is still gathering.
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxWaitSeconds: 2 },
  });
  const params = shortQuestion('one sentence on batch files');
  try {
    const abort = new AbortController();
    const first = attemptCall(run.runId, 'twice-1', role, params, 1, abort.signal);
    const firstSettled = first.then(
      () => 'answered',
      () => 'rejected',
    );
    await new Promise((r) => setTimeout(r, 500));
    // The server timed attempt 1 out (heartbeat) and scheduled attempt 2 on the same worker; the
    // worker learns that attempt 1 is cancelled only afterwards.
    const second = attemptCall(run.runId, 'twice-1', role, params, 2);
    await new Promise((r) => setTimeout(r, 200));
    abort.abort(new Error('attempt 1 timed out'));
    expect(await firstSettled).toBe('rejected');
    const stranded = new Promise<'stranded'>((r) => setTimeout(() => r('stranded'), 20_000).unref());
    const answered = await Promise.race([
      second.then((s) => s.completion.choices[0]!.message.content),
      stranded,
    ]);
    expect(answered).not.toBe('stranded');
    expect(typeof answered).toBe('string');
  } finally {
    await run.release();
  }
}, 60_000);

test('requests gathering while the run is paused are carried through continue-as-new, not held in an ever longer history', async () => {
  const run = await openRun('faults-paused');
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), runCheckSeconds: 0.2 },
  });
  const input: BatcherInput = {
    runWorkflowId: run.runId,
    role: 'judge',
    cfg: role,
    tuning: { maxHistoryEvents: 40 },
  };
  try {
    await run.pause(true);
    const batcher = await bed.w.client.workflow.start(BATCHER_WORKFLOW, {
      workflowId: batcherWorkflowId(run.runId, 'judge'),
      taskQueue: bed.w.taskQueue,
      args: [input],
    });
    const before = bed.sim.stats().batch.batchesCreated;
    const params = shortQuestion('held while paused');
    const call = attemptCall(run.runId, 'paused-1', role, params, 1);
    // Paused for a while: the batcher checks its run every 0.2 s, so its history grows past 40
    // events within seconds; it must continue-as-new with the request still gathering.
    const deadline = Date.now() + 15_000;
    let generations = 0;
    for (const seen = new Set<string>(); Date.now() < deadline && generations < 3;) {
      const d = await batcher.describe();
      seen.add(d.runId);
      generations = seen.size;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(generations).toBeGreaterThanOrEqual(3);
    const view = await batcher.query<BatcherView>(OPEN_BATCHES_QUERY);
    expect(view.pending).toBe(1);
    expect(bed.sim.stats().batch.batchesCreated).toBe(before); // pause still holds it
    const { events } = await batcher.fetchHistory();
    expect(events?.length ?? 0).toBeLessThan(200);

    await run.pause(false);
    const answered = await call;
    expect(answered.completion.choices[0]!.message.content).toBeTruthy();
    expect(bed.sim.stats().batch.batchesCreated).toBe(before + 1);
  } finally {
    await run.release();
  }
}, 60_000);

test('a batch the batcher gives up on (cancelled past its window and margin): its requests go to a new batch, not fail', async () => {
  // A provider that never finishes this batch on its own.
  const slow = await startSimulator({
    port: 0,
    seed: 12,
    batch: { ...FAST_SIM_BATCH, completionDelayMs: 3_600_000 },
  });
  try {
    const spool = tmpDir();
    const cfg = simRole(slow.url, { mode: 'batch', batch: { ...fastBatchSettings, spool } });
    const { batchSubmit, batchCancel, batchPoll } = createBatchActivities(process.env);
    const key = `given-up-${Date.now()}#0`;
    const sub = await batchSubmit({ cfg, key, spool, lines: [line('g1'), line('g2')], parts: [] });
    await batchCancel({ cfg, batchId: sub.batchId });
    const poll = { cfg, batchId: sub.batchId, inputFileId: sub.inputFileId, spool, key, attempts: '00' };
    let r = await batchPoll({ ...poll, givenUp: true });
    for (let i = 0; !r.ended && i < 50; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await batchPoll({ ...poll, givenUp: true });
    }
    expect(r.status).toBe('cancelled');
    expect(r.ended?.codes).toBe('rr'); // both into a new batch (counted against maxResubmits)
    expect(r.ended?.retry?.bytes).toHaveLength(2);
    // One the provider cancelled by itself (not the batcher) is still a failure, as before.
    expect((await batchPoll(poll)).ended?.codes).toBe('ff');
    // And the bound holds: a request already resubmitted maxResubmits times fails.
    const max = cfg.batch!.maxResubmits.toString(36);
    expect((await batchPoll({ ...poll, attempts: `${max}0`, givenUp: true })).ended?.codes).toBe('fr');
  } finally {
    await slow.close();
  }
}, 60_000);

test("a poll the provider refuses (the key revoked) fails the batch's calls with the reason; the batcher goes on", async () => {
  const keyed = await startSimulator({
    port: 0,
    seed: 13,
    apiKey: 'sk-right',
    batch: { ...FAST_SIM_BATCH, completionDelayMs: 3_000 },
  });
  const run = await openRun('faults-refused');
  process.env.CODECLM_FAULTS_KEY = 'sk-right';
  try {
    const role = simRole(keyed.url, {
      mode: 'batch',
      apiKeyEnv: 'CODECLM_FAULTS_KEY',
      batch: { ...fastBatchSettings, spool: tmpDir() },
    });
    const params = shortQuestion('polled with a revoked key');
    const call = attemptCall(run.runId, 'refused-1', role, params, 1);
    const settled = call.then(
      () => 'answered',
      (e: Error) => e.message,
    );
    for (let i = 0; keyed.stats().batch.batchesCreated === 0 && i < 100; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(keyed.stats().batch.batchesCreated).toBe(1);
    process.env.CODECLM_FAULTS_KEY = 'sk-revoked'; // every poll from now on is a 401
    const hung = new Promise<string>((r) => setTimeout(() => r('still waiting'), 20_000).unref());
    const outcome = await Promise.race([settled, hung]);
    expect(outcome).toContain('HTTP 401');
    expect(outcome).toMatch(/batch request \w+ failed: batch \S+ could not be polled: /);
    const batcher = bed.w.client.workflow.getHandle(batcherWorkflowId(run.runId, 'judge'));
    expect((await batcher.describe()).status.name).toBe('RUNNING');
    expect((await batcher.query<BatcherView>(OPEN_BATCHES_QUERY)).open).toHaveLength(0);
  } finally {
    delete process.env.CODECLM_FAULTS_KEY;
    await run.release();
    await keyed.close();
  }
}, 60_000);

test('a paused run whose progress query fails for a while stays paused for its batcher', async () => {
  const run = await openRun('faults-pause-query');
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), runCheckSeconds: 0.2 },
  });
  try {
    await run.pause(true);
    const before = bed.sim.stats().batch.batchesCreated;
    const params = shortQuestion('held while paused, query or not');
    const call = attemptCall(run.runId, 'pause-query-1', role, params, 1);
    const batcher = bed.w.client.workflow.getHandle(batcherWorkflowId(run.runId, 'judge'));
    for (let i = 0; i < 50; i++) {
      const view = await batcher.query<BatcherView>(OPEN_BATCHES_QUERY).catch(() => undefined);
      if (view?.paused && view.pending === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await batcher.query<BatcherView>(OPEN_BATCHES_QUERY)).toMatchObject({ paused: true, pending: 1 });
    await run.queryFails(true);
    await new Promise((r) => setTimeout(r, 2_000)); // ten run checks, each failing to read the state
    expect(bed.sim.stats().batch.batchesCreated).toBe(before);
    expect(await batcher.query<BatcherView>(OPEN_BATCHES_QUERY)).toMatchObject({ paused: true, pending: 1 });

    await run.queryFails(false);
    await run.pause(false);
    expect((await call).completion.choices[0]!.message.content).toBeTruthy();
    expect(bed.sim.stats().batch.batchesCreated).toBe(before + 1);
  } finally {
    await run.release();
  }
}, 60_000);

test('calls waiting on a batcher that was terminated are sent to a new one, not left pending for ever', async () => {
  const run = await openRun('faults-terminated');
  // Gathered for 3 s: the request is still gathering when its batcher is terminated.
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxWaitSeconds: 3 },
  });
  const params = shortQuestion('outlives its batcher');
  try {
    const call = attemptCall(run.runId, 'terminated-1', role, params, 1);
    const settled = call.then(
      (r) => r.completion.choices[0]!.message.content ?? '',
      (e: Error) => `rejected: ${e.message}`,
    );
    const batcher = bed.w.client.workflow.getHandle(batcherWorkflowId(run.runId, 'judge'));
    for (let i = 0; i < 50; i++) {
      const view = await batcher.query<BatcherView>(OPEN_BATCHES_QUERY).catch(() => undefined);
      if (view?.pending === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const first = await batcher.describe();
    await batcher.terminate('an operator, or the history limit');
    const hung = new Promise<string>((r) => setTimeout(() => r('still waiting'), 30_000).unref());
    const outcome = await Promise.race([settled, hung]);
    expect(outcome).not.toBe('still waiting');
    expect(outcome).not.toMatch(/^rejected/);
    expect((await batcher.describe()).runId).not.toBe(first.runId); // a new batcher answered it
  } finally {
    await run.release();
  }
}, 60_000);
