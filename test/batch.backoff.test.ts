import OpenAI from 'openai';
import { createBatchSend } from '../src/llm/batchClient';
import { batchLines, runBatches } from '../src/batch/status';
import type { ResolvedRole } from '../src/schemas/config';
import { startSimulator, type Simulator } from '../src/sim/server';
import { callBatchAsActivity, FAST_SIM_BATCH, shortQuestion } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';
import { startActivityTestWorker, type TestWorker } from './helpers/pipeline';
import { endSignal, pausableRun } from './workflows/pausable';

/**
 * Batches that fail as a whole (validation, the organisation's enqueued-token limit): the batcher
 * backs off instead of spending its requests' resubmissions, and waits for an open batch to end on
 * token_limit_exceeded. A real dev server, the real batcher workflow, the simulator's Batch API
 * failing batches on demand (each test has its own simulator, so its faults meet only its batches).
 */
let w: TestWorker;
const sims: Simulator[] = [];
beforeAll(async () => {
  process.env.CODECLM_BATCH_TICK_MS = '200';
  w = await startActivityTestWorker({
    name: 'backoff',
    workflowsPath: require.resolve('./workflows/pausable'),
    env: process.env,
  });
});
afterAll(async () => {
  await w?.stop();
  for (const s of sims) await s.close();
});

async function sim(seed: number, completionDelayMs = FAST_SIM_BATCH.completionDelayMs): Promise<Simulator> {
  const s = await startSimulator({ port: 0, seed, batch: { ...FAST_SIM_BATCH, completionDelayMs } });
  sims.push(s);
  return s;
}

async function faults(s: Simulator, body: object): Promise<void> {
  const res = await fetch(`${s.url.replace(/\/v1$/, '')}/_sim/batch-faults`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}

/** A run that stays open while its batcher works; released at the end of a test. */
async function openRun(name: string) {
  const runId = `${name}-${Date.now().toString(36)}`;
  const h = await w.client.workflow.start(pausableRun, { workflowId: runId, taskQueue: w.taskQueue });
  return { runId, release: () => h.signal(endSignal) };
}

function ask(runId: string, activityId: string, role: ResolvedRole, text: string) {
  const params = shortQuestion(text);
  return callBatchAsActivity(w, createBatchSend, { runId, activityId, role, params }).then(
    (r) => `answered: ${r.completion.choices[0]!.message.content ?? ''}`,
    (e: Error) => `rejected: ${e.message}`,
  );
}

/** When (test clock, ms) the simulator's batch count reached each value, sampled every 50 ms until `until` settles. */
async function creations(s: Simulator, until: Promise<unknown>): Promise<number[]> {
  const at: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    while (at.length < s.stats().batch.batchesCreated) at.push(Date.now());
    await new Promise((r) => setTimeout(r, 50));
  }
  while (at.length < s.stats().batch.batchesCreated) at.push(Date.now());
  return at;
}

/** The `status` lines about a held next batch, sampled every 50 ms until `until` settles. */
async function heldLines(runId: string, until: Promise<unknown>): Promise<string[]> {
  const seen = new Set<string>();
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    for (const l of batchLines(await runBatches(w.client.workflow, runId)))
      if (l.includes('next batch held')) seen.add(l.replace(/\d+ s more/, 'N s more'));
    await new Promise((r) => setTimeout(r, 50));
  }
  return [...seen];
}

async function waitFor(what: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !what() && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
  expect(what()).toBe(true);
}

test('a batch failing whole does not use up resubmissions: a request already resubmitted once is sent again after a back-off', async () => {
  const s = await sim(31);
  const run = await openRun('backoff-uncounted');
  const role = simRole(s.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxResubmits: 1, pollSeconds: 1, maxPollSeconds: 4 },
  });
  try {
    await faults(s, { expire: 1 });
    const call = ask(run.runId, 'uncounted-1', role, 'expired once, then refused whole');
    await waitFor(() => s.stats().batch.batchesCreated === 1);
    // The first batch expires (a resubmission, its one allowed); the second fails validation.
    await faults(s, { failValidation: 1 });
    const at = await creations(s, call);
    expect(await call).toMatch(/^answered: /);
    expect(at).toHaveLength(3);
    // The second batch's failure is seen at its first poll (pollSeconds), then the flush is held
    // pollSeconds more; before, the third batch went out maxWaitSeconds (0.25 s) after the poll.
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1_800);
  } finally {
    await run.release();
  }
}, 60_000);

test('whole-batch failures in a row back off doubling, and after maxResubmits + 1 the requests fail with the reason', async () => {
  const s = await sim(32);
  const run = await openRun('backoff-bound');
  const role = simRole(s.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxResubmits: 2, pollSeconds: 0.5, maxPollSeconds: 2 },
  });
  try {
    await faults(s, { failValidation: 4 });
    const call = ask(run.runId, 'bound-1', role, 'refused whole every time');
    const [at, held] = await Promise.all([creations(s, call), heldLines(run.runId, call)]);
    // `status` said why no batch was going out, and for how long (the holds last 0.5 and 1 s).
    expect(held.join('\n')).toMatch(
      /^ {2}next batch held N s more: [12] batch\(es\) in a row failed whole$/m,
    );
    expect(await call).toMatch(
      /^rejected: .*failed: simulated_validation_failure: .*\(3 batch\(es\) in a row failed whole; 2 resubmission\(s\) allowed\)$/,
    );
    expect(at).toHaveLength(3);
    // Each failure is seen at the batch's first poll (0.5 s), then held 0.5 s, then 1 s.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(900);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1_400);
  } finally {
    await run.release();
  }
}, 60_000);

test('token_limit_exceeded while another batch is open: the batcher waits for it to end, uncounted, and the request is answered', async () => {
  const s = await sim(33, 5_000);
  const client = new OpenAI({ baseURL: s.url, apiKey: 'sim', maxRetries: 0 });
  const run = await openRun('backoff-tokens');
  const role = simRole(s.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxResubmits: 1, pollSeconds: 0.5, maxPollSeconds: 1 },
  });
  try {
    const first = ask(run.runId, 'tokens-1', role, 'holds the enqueued tokens for 5 s');
    await waitFor(() => s.stats().batch.batchesCreated === 1);
    const [open] = (await client.batches.list()).data;
    // The next two batches are refused: the organisation's enqueued tokens are at their limit.
    await faults(s, { failValidation: 2, validationCode: 'token_limit_exceeded' });
    const second = ask(run.runId, 'tokens-2', role, 'refused while the first is open');
    const held = heldLines(run.runId, first);
    let refused: string | undefined;
    let most = 0;
    for (
      let b = await client.batches.retrieve(open!.id);
      !['completed', 'failed', 'expired'].includes(b.status);
    ) {
      most = Math.max(most, s.stats().batch.batchesCreated);
      if (most >= 2) refused ??= (await client.batches.list()).data[0]!.id;
      await new Promise((r) => setTimeout(r, 100));
      b = await client.batches.retrieve(open!.id);
    }
    // One refused batch, then no other batch while the first was open (not a loop of refusals).
    expect(most).toBe(2);
    expect(await client.batches.retrieve(refused!)).toMatchObject({
      status: 'failed',
      errors: { data: [{ code: 'token_limit_exceeded' }] },
    });
    expect(await first).toMatch(/^answered: /);
    expect(await held).toContain(
      "  next batch held until an open batch ends (the provider's enqueued-token limit)",
    );
    // Then: refused once more with none open (counted: 1 of maxResubmits + 1), then accepted.
    expect(await second).toMatch(/^answered: /);
    expect(s.stats().batch.batchesCreated).toBe(4);
  } finally {
    await run.release();
  }
}, 60_000);

test('a batch accepted after a whole-batch failure ends the run of failures: later requests get their own tries', async () => {
  const s = await sim(34);
  const run = await openRun('backoff-reset');
  const role = simRole(s.url, {
    mode: 'batch',
    batch: { ...fastBatchSettings, spool: tmpDir(), maxResubmits: 1, pollSeconds: 0.2, maxPollSeconds: 0.5 },
  });
  try {
    await faults(s, { failValidation: 1 });
    expect(await ask(run.runId, 'reset-1', role, 'refused once, then accepted')).toMatch(/^answered: /);
    await faults(s, { failValidation: 1 });
    // One failure in a row again (the accepted batch reset the count), not the second: sent again.
    expect(await ask(run.runId, 'reset-2', role, 'refused once after an accepted batch')).toMatch(
      /^answered: /,
    );
    expect(s.stats().batch.batchesCreated).toBe(4);
  } finally {
    await run.release();
  }
}, 60_000);
