import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { createBatchActivities } from '../src/batch/activities';
import { createBatchSend } from '../src/llm/batchClient';
import type { ResolvedRole } from '../src/schemas/config';
import { useBatchTestbed } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';
import { holdOpen, releaseSignal } from './workflows/holdOpen';

/**
 * Batch mode under faults: a provider that did what it was asked but whose answer never arrived
 * (the simulator behind a proxy that loses answers); two attempts of one activity waiting in one
 * worker process. A real dev server, a real batcher workflow and the simulator's Batch API.
 */
const bed = useBatchTestbed('faults', 11);

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
  const body = { model: 'sim-strong', max_tokens: 16, messages: [{ role: 'user', content: `say ${id}` }] };
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

/** A run that stays open while its batcher works; released at the end of a test. */
async function openRun(name: string): Promise<{ runId: string; release(): Promise<void> }> {
  const runId = `${name}-${Date.now().toString(36)}`;
  const h = await bed.w.client.workflow.start(holdOpen, { workflowId: runId, taskQueue: bed.w.taskQueue });
  return { runId, release: () => h.signal(releaseSignal) };
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
  const env = new MockActivityEnvironment(
    {
      workflowExecution: { workflowId: `${runId}/r1-e00000`, runId: 'entry-run-1' },
      activityId,
      attempt,
      taskQueue: `${bed.w.taskQueue}-llm-judge`,
      workflowNamespace: 'default',
      heartbeatDetails: undefined,
    },
    { client: bed.w.client },
  );
  const send = createBatchSend('judge', role, process.env);
  return env.run(() => send(params, signal)) as ReturnType<ReturnType<typeof createBatchSend>>;
}

test('an attempt that timed out and is cancelled after its retry began in the same worker does not strand the retry', async () => {
  const run = await openRun('faults-twice');
  // Gathered for 2 s: both attempts wait while the request is still gathering.
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxWaitSeconds: 2 },
  });
  const params: ChatCompletionCreateParamsNonStreaming = {
    model: 'sim-strong',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'one sentence on batch files' }],
  };
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
