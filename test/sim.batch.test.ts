import OpenAI, { toFile } from 'openai';
import { z } from 'zod';
import { startSimulator, type SimulatorOptions, type Simulator } from '../src/sim';
import { encodeTask, judgeTask, messagesFor, answerStrongTask, type StructuredTask } from '../src/tasks';
import type { Slots } from '../src/tasks/template';
import { tmpDir } from './helpers/env';

/**
 * The simulator's Files + Batch API, driven through the openai SDK (so the wire shapes are the ones
 * the SDK reads): upload, create, lifecycle to completion, output and error file lines, partial
 * failure, expiry, cancel, validation failure, restart with a state dir, list pagination.
 */
type Batch = OpenAI.Batches.Batch;

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

const sims: Simulator[] = [];
async function sim(opts: SimulatorOptions = {}): Promise<{ sim: Simulator; client: OpenAI }> {
  const s = await startSimulator({
    seed: 5,
    ...opts,
    batch: { completionDelayMs: 300, validatingMs: 50, finalizingMs: 50, cancellingMs: 50, ...opts.batch },
  });
  sims.push(s);
  return { sim: s, client: new OpenAI({ baseURL: s.url, apiKey: 'sk-sim', maxRetries: 0 }) };
}
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

function structured(task: StructuredTask<unknown, unknown>, slots: Slots, model: string) {
  return {
    model,
    temperature: 0.7,
    messages: messagesFor(task, slots),
    response_format: {
      type: 'json_schema',
      json_schema: { name: task.name, schema: z.toJSONSchema(task.output), strict: true },
    },
  };
}

/** A few chat bodies of the kinds the pipeline sends (encode, answer, judge), all for one model. */
function bodies(n: number, model = 'sim-strong'): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => {
    const instruction = `Write a short guide to topic number ${i} for a beginner.`;
    if (i % 3 === 0) return structured(encodeTask, { instruction, max_skills: '3' }, model);
    if (i % 3 === 1)
      return structured(
        judgeTask,
        { instruction, answer_a: `A careful guide to topic ${i}.`, answer_b: 'No idea.' },
        model,
      );
    return { model, temperature: 0.7, messages: messagesFor(answerStrongTask, { instruction }) };
  });
}

function jsonl(lines: unknown[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

function requestLines(list: Record<string, unknown>[], prefix = 'req'): unknown[] {
  return list.map((body, i) => ({
    custom_id: `${prefix}-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body,
  }));
}

async function upload(client: OpenAI, text: string, name = 'requests.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });
}

async function readLines(client: OpenAI, fileId: string | null | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as OutputLine);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the batch reaches a final state, recording every status it was seen in. */
async function settle(client: OpenAI, id: string, seen: string[] = []): Promise<Batch> {
  for (let i = 0; i < 200; i++) {
    const b = await client.batches.retrieve(id);
    if (seen.at(-1) !== b.status) seen.push(b.status);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) return b;
    await sleep(20);
  }
  throw new Error(`batch ${id} did not settle`);
}

test('upload, create, lifecycle to completion: every line answered exactly as online, usage and prices in the stats', async () => {
  const { sim: s, client } = await sim();
  const list = bodies(9);
  const text = jsonl(requestLines(list));
  const file = await upload(client, text);
  expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'requests.jsonl' });
  expect(file.bytes).toBe(Buffer.byteLength(text));
  expect(file.id).toMatch(/^file-/);
  expect((await client.files.retrieve(file.id)).bytes).toBe(file.bytes);
  expect(await (await client.files.content(file.id)).text()).toBe(text);

  const created = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { codeclm_key: 'run-1/answer/0001' },
  });
  expect(created).toMatchObject({
    object: 'batch',
    status: 'validating',
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { codeclm_key: 'run-1/answer/0001' },
    output_file_id: null,
    error_file_id: null,
  });
  expect(created.expires_at! - created.created_at).toBe(24 * 3600);

  // The create answer is the validating state; polls then see in_progress and the end (validating
  // lasts 50 ms here, which a poll on a loaded machine can miss).
  const seen: string[] = [created.status];
  const done = await settle(client, created.id, seen);
  expect(seen).toEqual(expect.arrayContaining(['validating', 'in_progress', 'completed']));
  expect(seen.indexOf('in_progress')).toBeLessThan(seen.indexOf('completed'));
  expect(done.request_counts).toEqual({ total: 9, completed: 9, failed: 0 });
  expect(done.error_file_id).toBeNull();
  expect(done.model).toBe('sim-strong');
  expect(done.in_progress_at).not.toBeNull();
  expect(done.finalizing_at).not.toBeNull();
  expect(done.completed_at).not.toBeNull();

  const out = await readLines(client, done.output_file_id);
  expect(new Set(out.map((l) => l.custom_id))).toEqual(new Set(list.map((_, i) => `req-${i}`)));
  // The documented shape of an output line; the order is not the input order (match by custom_id).
  expect(out.map((l) => l.custom_id)).not.toEqual(list.map((_, i) => `req-${i}`));
  const outFile = await client.files.retrieve(done.output_file_id!);
  expect(outFile.purpose).toBe('batch_output');

  let promptTokens = 0;
  let completionTokens = 0;
  for (const line of out) {
    expect(line.id).toMatch(/^batch_req_/);
    expect(line.error).toBeNull();
    expect(line.response!.status_code).toBe(200);
    expect(line.response!.request_id).toMatch(/^req_/);
    const body = line.response!.body as unknown as OpenAI.ChatCompletion;
    expect(body.object).toBe('chat.completion');
    // The same request online gets the same content.
    const i = Number(line.custom_id.split('-')[1]);
    const online = await client.chat.completions.create(
      list[i] as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming,
    );
    expect(body.choices[0]!.message.content).toBe(online.choices[0]!.message.content);
    expect(body.usage).toEqual(online.usage);
    promptTokens += body.usage!.prompt_tokens;
    completionTokens += body.usage!.completion_tokens;
  }
  expect(done.usage).toMatchObject({
    input_tokens: promptTokens,
    output_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  });

  const stats = s.stats();
  expect(stats.batch).toMatchObject({
    batchesCreated: 1,
    requests: 9,
    failedRequests: 0,
    promptTokens,
    completionTokens,
    byStatus: { completed: 1 },
  });
  // Downloads: the input file read back above, then the output file.
  expect(stats.files).toEqual({
    uploaded: 1,
    bytes: Buffer.byteLength(text),
    downloads: 2,
    downloadedBytes: Buffer.byteLength(text) + outFile.bytes,
  });
  // The online calls above asked the same requests: same tokens, at twice the batch price.
  expect(stats.requests).toBe(9);
  expect(stats.promptTokens).toBe(promptTokens);
  expect(stats.prices.batch.inputPerMTok).toBe(stats.prices.online.inputPerMTok / 2);
  expect(stats.prices.batch.outputPerMTok).toBe(stats.prices.online.outputPerMTok / 2);
  expect(stats.cost.online).toBeGreaterThan(0);
  expect(stats.cost.batch).toBeCloseTo(stats.cost.online / 2, 12);
  expect(stats.cost.total).toBeCloseTo(stats.cost.online + stats.cost.batch, 12);
  // GET /_sim/stats says the same over HTTP.
  const overHttp = (await (await fetch(s.url.replace(/\/v1$/, '/_sim/stats'))).json()) as typeof stats;
  expect(overHttp.batch.batchesCreated).toBe(1);
  expect(overHttp.cost.batch).toBeCloseTo(stats.cost.batch, 12);
});

test('partial failure: a failure rate and scripted custom_ids go to the error file with status and reason; counts add up', async () => {
  const { sim: s, client } = await sim({
    batch: {
      failureRate: 0.3,
      failLines: ['req-2', { customId: 'req-5', status: 400, code: 'invalid_prompt', message: 'nope' }],
    },
  });
  const file = await upload(client, jsonl(requestLines(bodies(30))));
  const b = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  const done = await settle(client, b.id);
  expect(done.status).toBe('completed');
  const out = await readLines(client, done.output_file_id);
  const errs = await readLines(client, done.error_file_id);
  expect(done.request_counts).toEqual({ total: 30, completed: out.length, failed: errs.length });
  expect(out.length + errs.length).toBe(30);
  // ~30 % drawn, plus the two scripted ones.
  expect(errs.length).toBeGreaterThanOrEqual(4);
  expect(errs.length).toBeLessThanOrEqual(20);
  const byId = new Map(errs.map((l) => [l.custom_id, l]));
  expect(byId.get('req-2')!.response).toMatchObject({
    status_code: 500,
    body: { error: { type: 'server_error' } },
  });
  expect(byId.get('req-5')).toMatchObject({
    error: null,
    response: { status_code: 400, body: { error: { code: 'invalid_prompt', message: 'nope' } } },
  });
  for (const l of errs) expect(l.response!.status_code).toBeGreaterThanOrEqual(400);
  expect(out.every((l) => !byId.has(l.custom_id))).toBe(true);

  // Resubmitted in a new batch, the scripted ones (failing once) succeed; rate draws are new per batch.
  const again = await upload(
    client,
    jsonl(requestLines(bodies(30)).filter((l) => byId.has((l as { custom_id: string }).custom_id))),
  );
  const b2 = await settle(
    client,
    (
      await client.batches.create({
        input_file_id: again.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
    ).id,
  );
  const out2 = await readLines(client, b2.output_file_id);
  const errs2 = new Map((await readLines(client, b2.error_file_id)).map((l) => [l.custom_id, l]));
  expect(out2.length + errs2.size).toBe(byId.size);
  // The scripted failures were spent: a line failing now failed by the rate's new draw (500), never the 400.
  expect(errs2.get('req-5')?.response?.status_code).not.toBe(400);
  // The rate's draws are per batch: some lines that failed before succeed now.
  expect(out2.length).toBeGreaterThan(0);
  expect(s.stats().batch.failedRequests).toBe(errs.length + b2.request_counts!.failed);
});

test('a line the online endpoint would refuse (unknown model) is answered with that error in the error file', async () => {
  const { client } = await sim({ models: ['sim-strong'] });
  const lines = requestLines(bodies(2, 'sim-other'));
  const file = await upload(client, jsonl(lines));
  const done = await settle(
    client,
    (
      await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
    ).id,
  );
  expect(done.request_counts).toEqual({ total: 2, completed: 0, failed: 2 });
  expect(done.output_file_id).toBeNull();
  const errs = await readLines(client, done.error_file_id);
  expect(errs[0]!.response).toMatchObject({ status_code: 404, body: { error: { code: 'model_not_found' } } });
});

test('expiry: on demand (half done) and when the window runs out; unfinished lines are batch_expired errors', async () => {
  const { sim: s, client } = await sim({ batch: { expire: 1 } });
  const file = await upload(client, jsonl(requestLines(bodies(10))));
  const create = () =>
    client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
  const expired = await settle(client, (await create()).id);
  expect(expired.status).toBe('expired');
  expect(expired.expired_at).not.toBeNull();
  expect(expired.request_counts).toEqual({ total: 10, completed: 5, failed: 5 });
  const out = await readLines(client, expired.output_file_id);
  const errs = await readLines(client, expired.error_file_id);
  expect(out).toHaveLength(5);
  expect(errs).toHaveLength(5);
  for (const l of errs) expect(l).toMatchObject({ response: null, error: { code: 'batch_expired' } });
  // Only the first batch was asked to expire.
  expect((await settle(client, (await create()).id)).status).toBe('completed');

  // Expire a running batch now, through the control endpoint.
  const running = await create();
  await sleep(120);
  const res = await fetch(s.url.replace(/\/v1$/, `/_sim/batches/${running.id}/expire`), { method: 'POST' });
  expect(res.status).toBe(200);
  expect(((await res.json()) as Batch).status).toBe('expired');

  // A window shorter than the work: the batch expires at the window's end.
  const { client: c2 } = await sim({ batch: { completionDelayMs: 5_000, windowMs: 300 } });
  const f2 = await upload(c2, jsonl(requestLines(bodies(4))));
  const late = await settle(
    c2,
    (
      await c2.batches.create({
        input_file_id: f2.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
    ).id,
  );
  expect(late.status).toBe('expired');
  expect(late.request_counts!.total).toBe(4);
  expect((await readLines(c2, late.error_file_id)).every((l) => l.error?.code === 'batch_expired')).toBe(
    true,
  );
});

test('cancel: cancelling then cancelled, the rest of the lines batch_cancelled; a finished batch cannot be cancelled', async () => {
  const { sim: s, client } = await sim({ batch: { completionDelayMs: 2_000 } });
  const file = await upload(client, jsonl(requestLines(bodies(20))));
  const b = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  await sleep(700);
  const mid = await client.batches.retrieve(b.id);
  expect(mid.status).toBe('in_progress');
  expect(mid.request_counts!.completed).toBeGreaterThan(0);
  expect(mid.request_counts!.completed).toBeLessThan(20);
  const cancelling = await client.batches.cancel(b.id);
  expect(cancelling.status).toBe('cancelling');
  expect(cancelling.cancelling_at).not.toBeNull();
  const done = await settle(client, b.id);
  expect(done.status).toBe('cancelled');
  const out = await readLines(client, done.output_file_id);
  const errs = await readLines(client, done.error_file_id);
  expect(out.length).toBeGreaterThanOrEqual(mid.request_counts!.completed);
  expect(out.length + errs.length).toBe(20);
  expect(errs.every((l) => l.error?.code === 'batch_cancelled' && l.response === null)).toBe(true);
  expect(done.request_counts).toEqual({ total: 20, completed: out.length, failed: errs.length });
  expect(s.stats().batch.byStatus).toEqual({ cancelled: 1 });

  await expect(client.batches.cancel(b.id)).resolves.toMatchObject({ status: 'cancelled' });
});

test('validation: malformed files fail the batch with line-numbered errors; on-demand failure; bad create requests are 400s', async () => {
  const { sim: s, client } = await sim({ batch: { failValidation: 1 } });
  const good = await upload(client, jsonl(requestLines(bodies(2))));
  const create = (input_file_id: string) =>
    client.batches.create({ input_file_id, endpoint: '/v1/chat/completions', completion_window: '24h' });

  const onDemand = await settle(client, (await create(good.id)).id);
  expect(onDemand.status).toBe('failed');
  expect(onDemand.failed_at).not.toBeNull();
  expect(onDemand.errors!.data![0]).toMatchObject({ code: 'simulated_validation_failure' });
  expect(onDemand.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
  const completed = await settle(client, (await create(good.id)).id);
  expect(completed.status).toBe('completed');
  await expect(client.batches.cancel(completed.id)).rejects.toMatchObject({ status: 409 });

  const lines = requestLines(bodies(3)) as Record<string, unknown>[];
  const bad = [
    lines[0],
    '{not json',
    { ...lines[1], custom_id: 'req-0' },
    { ...lines[2], url: '/v1/embeddings' },
    { ...lines[2], custom_id: 'other', body: { ...(lines[2]!.body as object), model: 'sim-target' } },
  ];
  const badFile = await upload(
    client,
    bad.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'),
  );
  const failed = await settle(client, (await create(badFile.id)).id);
  expect(failed.status).toBe('failed');
  expect(failed.output_file_id).toBeNull();
  expect(failed.errors!.data!.map((e) => [e.code, e.line])).toEqual([
    ['invalid_json_line', 2],
    ['duplicate_custom_id', 3],
    ['mismatched_endpoint', 4],
    ['mismatched_model', 5],
  ]);

  // Create-time refusals: the SDK raises them as HTTP errors.
  await expect(create('file-missing')).rejects.toMatchObject({ status: 404 });
  await expect(
    client.batches.create({
      input_file_id: good.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
    }),
  ).rejects.toMatchObject({ status: 400, param: 'endpoint' });
  await expect(
    client.batches.create({
      input_file_id: good.id,
      endpoint: '/v1/chat/completions',
      completion_window: '1h' as '24h',
    }),
  ).rejects.toMatchObject({ status: 400, param: 'completion_window' });
  await expect(
    client.batches.create({
      input_file_id: good.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
    }),
  ).rejects.toMatchObject({ status: 400, param: 'metadata' });
  const notBatch = await client.files.create({
    file: await toFile(Buffer.from('{}\n'), 'x.jsonl'),
    purpose: 'fine-tune',
  });
  await expect(create(notBatch.id)).rejects.toMatchObject({ status: 400, param: 'input_file_id' });
  await expect(
    client.files.create({ file: await toFile(Buffer.from('x'), 'x.jsonl'), purpose: 'nonsense' as 'batch' }),
  ).rejects.toMatchObject({ status: 400, param: 'purpose' });
  await expect(client.batches.retrieve('batch_nope')).rejects.toMatchObject({ status: 404 });
  // Failed creates are not counted as created batches.
  expect(s.stats().batch.batchesCreated).toBe(3);
});

test('restart with a state dir: an open batch, its files and the created count survive; it then completes', async () => {
  const stateDir = tmpDir('codeclm-simstate-');
  const first = await sim({ stateDir, batch: { completionDelayMs: 1_500 } });
  const file = await upload(first.client, jsonl(requestLines(bodies(6))));
  const b = await first.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { codeclm_key: 'k1' },
  });
  await sleep(200);
  expect((await first.client.batches.retrieve(b.id)).status).toBe('in_progress');
  await first.sim.close();

  const second = await sim({ stateDir, batch: { completionDelayMs: 1_500 } });
  const again = await second.client.batches.retrieve(b.id);
  expect(again).toMatchObject({ id: b.id, metadata: { codeclm_key: 'k1' }, input_file_id: file.id });
  expect(['in_progress', 'finalizing', 'completed']).toContain(again.status);
  const listed = await second.client.batches.list();
  expect(listed.data.map((x) => x.id)).toEqual([b.id]);
  expect(second.sim.stats().batch.batchesCreated).toBe(1);
  expect(second.sim.stats().files.uploaded).toBe(1);
  const done = await settle(second.client, b.id);
  expect(done.status).toBe('completed');
  expect(await readLines(second.client, done.output_file_id)).toHaveLength(6);

  // A third start still has the finished batch and its output; no batch without a state dir does.
  const third = await sim({ stateDir });
  expect((await third.client.batches.retrieve(b.id)).output_file_id).toBe(done.output_file_id);
  expect(await readLines(third.client, done.output_file_id)).toHaveLength(6);
  const other = await sim();
  await expect(other.client.batches.retrieve(b.id)).rejects.toMatchObject({ status: 404 });
});

test('list pagination: newest first, after/limit, has_more; files list and delete', async () => {
  const { sim: s, client } = await sim();
  const file = await upload(client, jsonl(requestLines(bodies(1))));
  const ids: string[] = [];
  for (let i = 0; i < 5; i++)
    ids.push(
      (
        await client.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: { n: String(i) },
        })
      ).id,
    );
  const first = await client.batches.list({ limit: 2 });
  expect(first.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
  expect(first.has_more).toBe(true);
  const second = await client.batches.list({ limit: 2, after: ids[3] });
  expect(second.data.map((b) => b.id)).toEqual([ids[2], ids[1]]);
  const all: string[] = [];
  for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
  expect(all).toEqual([...ids].reverse());
  const raw = (await (await fetch(`${s.url}/batches?limit=3&after=${ids[1]}`)).json()) as {
    object: string;
    data: { id: string }[];
    first_id: string;
    last_id: string;
    has_more: boolean;
  };
  expect(raw).toMatchObject({ object: 'list', first_id: ids[0], last_id: ids[0], has_more: false });
  await expect(client.batches.list({ limit: 101 })).rejects.toMatchObject({ status: 400 });

  const files = await client.files.list({ purpose: 'batch' });
  expect(files.data.map((f) => f.id)).toEqual([file.id]);
  expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
  await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
  // The batches that read it still complete (their input was kept until they finished).
  const done = await settle(client, ids[0]!);
  expect(done.status).toBe('completed');
  expect(s.stats().batch.batchesCreated).toBe(5);
});

test('faults added at run time through /_sim/batch-faults; reset forgets batches and files', async () => {
  const { sim: s, client } = await sim();
  const base = s.url.replace(/\/v1$/, '');
  const bad = await fetch(`${base}/_sim/batch-faults`, { method: 'POST', body: '{"expire":-1}' });
  expect(bad.status).toBe(400);
  const badCode = await fetch(`${base}/_sim/batch-faults`, { method: 'POST', body: '{"validationCode":7}' });
  expect(badCode.status).toBe(400);
  const ok = await fetch(`${base}/_sim/batch-faults`, {
    method: 'POST',
    body: JSON.stringify({ failLines: ['req-0'], failValidation: 1 }),
  });
  expect(await ok.json()).toEqual({
    pending: { expire: 0, failValidation: 1, failLines: [{ customId: 'req-0' }] },
  });
  const file = await upload(client, jsonl(requestLines(bodies(2))));
  const create = () =>
    client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
  expect((await settle(client, (await create()).id)).status).toBe('failed');
  const second = await settle(client, (await create()).id);
  expect(second.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
  await fetch(`${base}/_sim/reset`, { method: 'POST', body: '{}' });
  expect(s.stats().batch.batchesCreated).toBe(0);
  expect((await client.batches.list()).data).toEqual([]);
  expect((await client.files.list()).data).toEqual([]);
});

test('with an API key set, the Files and Batch endpoints want it too', async () => {
  const { sim: s } = await sim({ apiKey: 'sk-right' });
  const wrong = new OpenAI({ baseURL: s.url, apiKey: 'sk-wrong', maxRetries: 0 });
  await expect(wrong.batches.list()).rejects.toMatchObject({ status: 401 });
  await expect(upload(wrong, jsonl(requestLines(bodies(1))))).rejects.toMatchObject({ status: 401 });
  const right = new OpenAI({ baseURL: s.url, apiKey: 'sk-right', maxRetries: 0 });
  expect((await upload(right, jsonl(requestLines(bodies(1))))).purpose).toBe('batch');
  expect(s.stats().files.uploaded).toBe(1);
});
