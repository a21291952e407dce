import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import * as batchClient from '../src/llm/batchClient';
import { createBatchActivities, type PollResult } from '../src/batch/activities';
import { CODE, type StoredOutcome } from '../src/batch/protocol';
import { spoolKeys, spoolStore } from '../src/batch/spool';
import type { ResolvedRole } from '../src/schemas/config';
import { callBatchAsActivity, useBatchTestbed } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';
import { holdOpen, releaseSignal } from './workflows/holdOpen';

/**
 * Output files are read once, by the batcher's poll, and streamed: the poll writes every answer
 * into its request's outcome in the spool, and waiting processes answer from that object alone.
 */
const bed = useBatchTestbed('stream', 11);

type Client = typeof batchClient;

/** A second copy of the batch-mode client module: what another worker process would have. */
function otherProcess(): Client {
  let copy: Client | undefined;
  jest.isolateModules(() => {
    copy = jest.requireActual<Client>('../src/llm/batchClient');
  });
  return copy!;
}

/** One batch-mode call of an entry of `runId`, made in `client`'s process (test/helpers/batchCalls.ts). */
function callAsActivity(
  client: Client,
  runId: string,
  activityId: string,
  role: ResolvedRole,
  params: ChatCompletionCreateParamsNonStreaming,
  attempt = 1,
) {
  return callBatchAsActivity(bed.w, client.createBatchSend, { runId, activityId, role, params, attempt });
}

const question = (i: number): ChatCompletionCreateParamsNonStreaming => ({
  model: 'sim-strong',
  max_tokens: 48,
  messages: [{ role: 'user', content: `Question ${i}: why stream a batch output file?` }],
});

test('two waiting processes: each output file is downloaded once (by the poll), answers equal online', async () => {
  const spool = tmpDir('codeclm-stream-');
  const runId = `stream-two-${Date.now().toString(36)}`;
  const h = await bed.w.client.workflow.start(holdOpen, { workflowId: runId, taskQueue: bed.w.taskQueue });
  const role = simRole(bed.sim.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool, maxRequests: 1000, maxWaitSeconds: 1 },
  });
  const processes = [batchClient, otherProcess()];
  const before = bed.sim.stats();
  const n = 24;
  try {
    const params = Array.from({ length: n }, (_, i) => question(i));
    const results = await Promise.all(
      params.map((p, i) => callAsActivity(processes[i % 2]!, runId, `a${i}`, role, p)),
    );
    const after = bed.sim.stats();
    const batches = after.batch.batchesCreated - before.batch.batchesCreated;
    expect(batches).toBeGreaterThanOrEqual(1);
    // Each batch has one output file and no error file (nothing failed): downloaded by its poll only.
    expect(after.files.downloads - before.files.downloads).toBe(batches);

    const openai = new OpenAI({ baseURL: bed.sim.url, apiKey: 'sk-sim', maxRetries: 0 });
    for (let i = 0; i < n; i++) {
      const online = await openai.chat.completions.create(params[i]!);
      expect(results[i]!.completion.choices[0]!.message.content).toBe(online.choices[0]!.message.content);
    }

    // An outcome written before answers went into the spool (an upgrade mid-run): a retried call
    // picks its line out of the output file instead, one download, no new batch.
    const id = batchClient.requestId(`${runId}/r1-e00000`, 'entry-run-1', 'a3', 0, params[3]!);
    const store = spoolStore(spool);
    const stored = (await store.readJson<StoredOutcome>(spoolKeys.outcome(id)))!;
    expect(stored).toMatchObject({ state: 'done', answer: results[3]!.completion });
    const { answer: _dropped, ...withoutAnswer } = stored as Extract<StoredOutcome, { state: 'done' }>;
    await store.write(spoolKeys.outcome(id), JSON.stringify(withoutAnswer));
    const beforeRetry = bed.sim.stats();
    const retried = await callAsActivity(otherProcess(), runId, 'a3', role, params[3]!, 2);
    expect(retried.completion).toEqual(results[3]!.completion);
    const afterRetry = bed.sim.stats();
    expect(afterRetry.files.downloads - beforeRetry.files.downloads).toBe(1);
    expect(afterRetry.batch.batchesCreated).toBe(beforeRetry.batch.batchesCreated);
  } finally {
    await h.signal(releaseSignal);
  }
}, 120_000);

/**
 * A stand-in provider whose output file (`lines` lines of ~`size` bytes) is sent in two halves:
 * the second only once the spool holds the answer of a line from the first (or after 15 s). A poll
 * that read the whole file before writing anything would only get it after those 15 s.
 */
async function gatedProvider(lines: string[], firstOutcome: string) {
  const half = Math.floor(lines.length / 2);
  const body = (a: number, b: number) => lines.slice(a, b).join('\n') + '\n';
  let gateOpenedBy: 'outcome' | 'timeout' | undefined;
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url?.startsWith('/batches/')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'batch_big',
            object: 'batch',
            status: 'completed',
            output_file_id: 'file-out',
            error_file_id: null,
            request_counts: { total: lines.length, completed: lines.length, failed: 0 },
          }),
        );
      } else if (req.url === '/files/file-out/content') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(body(0, half));
        const deadline = Date.now() + 15_000;
        while (!fs.existsSync(firstOutcome) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        gateOpenedBy = fs.existsSync(firstOutcome) ? 'outcome' : 'timeout';
        res.end(body(half, lines.length));
      } else {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gateOpenedBy: () => gateOpenedBy,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('a poll over a 4 MB output file streams it: answers reach the spool before the file has been read', async () => {
  const spool = tmpDir('codeclm-stream-poll-');
  const n = 4000;
  const ids = Array.from({ length: n }, (_, i) => `req${String(i).padStart(6, '0')}`);
  const filler = 'streamed answer text '.repeat(45); // ~1 KB per line
  const lines = ids.map((id, i) =>
    JSON.stringify({
      id: `line-${i}`,
      custom_id: id,
      response: {
        status_code: 200,
        body: {
          id: `chatcmpl-${i}`,
          object: 'chat.completion',
          choices: [{ message: { content: `${i} ${filler}` } }],
        },
      },
      error: null,
    }),
  );
  expect(lines.join('\n').length).toBeGreaterThan(4_000_000);
  const store = spoolStore(spool);
  const key = 'stream-test-batch';
  await store.write(spoolKeys.manifest(key), ids.map((id, i) => `${id}\tpart0\t${i}`).join('\n') + '\n');
  const provider = await gatedProvider(lines, store.where(spoolKeys.outcome(ids[0]!)));
  try {
    const cfg = simRole(provider.url, { mode: 'batch', batch: { ...fastBatchSettings, spool } });
    const poll = createBatchActivities(process.env).batchPoll;
    const env = new MockActivityEnvironment();
    const r: PollResult = await env.run(() =>
      poll({ cfg, batchId: 'batch_big', inputFileId: 'file-in', spool, key, attempts: '' }),
    );
    expect(provider.gateOpenedBy()).toBe('outcome');
    expect(r.ended?.codes).toBe(CODE.done.repeat(n));
    for (const i of [0, 1999, 2000, n - 1]) {
      const o = await store.readJson<StoredOutcome>(spoolKeys.outcome(ids[i]!));
      expect(o).toMatchObject({ state: 'done', file: 'file-out', batchId: 'batch_big' });
      expect(
        (o as { answer: { choices: { message: { content: string } }[] } }).answer.choices[0]!.message.content,
      ).toBe(`${i} ${filler}`);
    }
  } finally {
    await provider.close();
  }
}, 60_000);
