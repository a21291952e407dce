import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { codeclmEval, type EvalResult } from '../src/workflows/eval';
import { startSimulator } from '../src/sim/server';
import { verdict } from '../src/report/crr';
import type { EvalRecord } from '../src/activities/eval';
import type { EvalReport } from '../src/report/evalReport';
import type { ResolvedConfig } from '../src/schemas/config';
import { simConfig, startTestWorker, type TestWorker } from './helpers/pipeline';
import { tmpDir } from './helpers/env';
import { readJsonl } from './helpers/files';
import { expectReplays } from './helpers/replay';

/**
 * `codeclm eval` end to end: the eval workflows on the suite's real Temporal dev server, a real
 * worker, the real LLM boundary and the simulator over HTTP.
 */
const instructionsFile = path.join(__dirname, '..', 'examples', 'eval', 'instructions.jsonl');
let sim: Awaited<ReturnType<typeof startSimulator>>;
let w: TestWorker;
let rejecting: http.Server;
let rejectingUrl: string;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11 });
  w = await startTestWorker('eval-e2e');
  // A "target" endpoint that forwards to the simulator, except that it refuses (HTTP 400) any request
  // mentioning "poison": the answer fails for good, and the item must be reported, not dropped.
  rejecting = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.includes('poison')) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { message: 'this request is refused by the test endpoint', type: 'invalid_request_error' },
          }),
        );
        return;
      }
      fetch(`${sim.url}${req.url!.replace(/^\/v1/, '')}`, {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body,
      }).then(
        async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await r.arrayBuffer()));
        },
        (err: Error) => {
          res.writeHead(502);
          res.end(err.message);
        },
      );
    });
  });
  await new Promise<void>((resolve) => rejecting.listen(0, '127.0.0.1', resolve));
  rejectingUrl = `http://127.0.0.1:${(rejecting.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await w?.stop();
  await sim?.close();
  await new Promise((resolve) => rejecting?.close(resolve));
});

async function runEval(
  evalId: string,
  outDir: string,
  file: string,
  config: ResolvedConfig,
): Promise<EvalResult> {
  return w.client.workflow.execute(codeclmEval, {
    workflowId: evalId,
    taskQueue: w.taskQueue,
    args: [{ evalId, instructionsFile: file, outDir, skipInvalid: false, config, taskQueue: w.taskQueue }],
  });
}

const evalId = `eval-e2e-${Date.now()}`;
const outDir = tmpDir('codeclm-eval-e2e-');
let result: EvalResult;

test('every instruction answered by both models, judged in both orders, with a verdict and CRR per category', async () => {
  result = await runEval(
    evalId,
    outDir,
    instructionsFile,
    simConfig(sim.url, { limits: { concurrency: 8 } }),
  );
  const records = readJsonl<EvalRecord>(path.join(outDir, 'eval.jsonl'));
  expect(records).toHaveLength(24);
  expect(result.judged).toBe(24);
  expect(result.failed).toBe(0);
  expect(records.map((r) => r.index)).toEqual(Array.from({ length: 24 }, (_, i) => i));
  for (const r of records) {
    expect(r.category).toEqual(expect.any(String));
    expect(r.instruction.length).toBeGreaterThan(10);
    expect(r.target_answer.length).toBeGreaterThan(0);
    expect(r.strong_answer.length).toBeGreaterThan(0);
    for (const order of [r.scores.target_first, r.scores.strong_first]) {
      for (const s of [order.target, order.strong]) {
        expect(s).toBeGreaterThanOrEqual(1);
        expect(s).toBeLessThanOrEqual(10);
      }
    }
    expect(r.verdict).toBe(verdict(r.scores));
    expect(r.eval_id).toBe(evalId);
  }

  // The report's numbers are the ones recomputed from eval.jsonl.
  const report = JSON.parse(fs.readFileSync(path.join(outDir, 'eval-report.json'), 'utf8')) as EvalReport;
  const count = (v: string) => records.filter((r) => r.verdict === v).length;
  expect(report.crr.overall).toMatchObject({
    total: 24,
    target_wins: count('target'),
    ties: count('tie'),
    strong_wins: count('strong'),
  });
  expect(report.crr.overall.crr).toBeCloseTo((count('target') + count('tie')) / 24, 10);
  expect(Object.keys(report.crr.by_category).sort()).toEqual([
    'coding',
    'knowledge',
    'math',
    'reasoning',
    'roleplay',
    'writing',
  ]);
  for (const [category, cell] of Object.entries(report.crr.by_category)) {
    const mine = records.filter((r) => r.category === category);
    expect(cell.total).toBe(mine.length);
    expect(cell.target_wins + cell.ties).toBe(mine.filter((r) => r.verdict !== 'strong').length);
  }
  expect(result.crr).toEqual(report.crr);
  // 24 x (2 answers + 2 judgements); the judge ran at temperature 0.
  expect(report.usage.per_stage_role['answer/target']!.calls).toBe(24);
  expect(report.usage.per_stage_role['answer/strong']!.calls).toBe(24);
  expect(report.usage.per_stage_role['judge/judge']!.calls).toBe(48);
  expect(report.models).toEqual({ target: 'sim-target', strong: 'sim-strong', judge: 'sim-strong' });
  // The simulator's strong model answers better: CRR is well below 100% and the strong side wins some.
  expect(report.crr.overall.strong_wins).toBeGreaterThan(0);

  const md = fs.readFileSync(path.join(outDir, 'eval-report.md'), 'utf8');
  expect(md).toContain('| set | judged | target wins | ties | strong wins | CRR % |');
  expect(md).toContain('| **all** | 24 |');
  expect(md).toContain('](eval-crr.svg)');
  expect(fs.readFileSync(path.join(outDir, 'eval-crr.svg'), 'utf8')).toMatch(/^<svg xmlns/);
});

test('running again over the same out dir reuses the per-item results: same verdicts, no new LLM calls', async () => {
  const again = await runEval(
    `${evalId}-again`,
    outDir,
    instructionsFile,
    simConfig(sim.url, { limits: { concurrency: 8 } }),
  );
  expect(again.judged).toBe(24);
  expect(again.crr).toEqual(result.crr);
  expect(Object.keys(again.usage)).toHaveLength(0);
  expect(readJsonl<EvalRecord>(path.join(outDir, 'eval.jsonl'))).toHaveLength(24);
});

test('items that fail for good are reported with their reasons and left out of CRR', async () => {
  const dir = tmpDir('codeclm-eval-fail-');
  const file = path.join(dir, 'set.jsonl');
  fs.writeFileSync(
    file,
    [
      { id: 'a', category: 'x', instruction: 'Explain what a hash table is.' },
      { id: 'b', category: 'x', instruction: 'Describe this poison ivy rash remedy in two lines.' },
      { id: 'c', category: 'y', instruction: 'Write a limerick about a tidy cat.' },
      { id: 'd', category: 'y', instruction: 'Is poison dart frog venom used in medicine?' },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n'),
  );
  const base = simConfig(sim.url, {
    limits: { concurrency: 4, llmMaxAttempts: 2, llmMaxRetryIntervalSeconds: 1 },
  });
  const config: ResolvedConfig = {
    ...base,
    roles: { ...base.roles, target: { ...base.roles.target, baseURL: rejectingUrl } },
  };
  const out = path.join(dir, 'out');
  const r = await runEval(`${evalId}-fail`, out, file, config);
  expect(r.judged).toBe(2);
  expect(r.failed).toBe(2);
  expect(readJsonl<EvalRecord>(path.join(out, 'eval.jsonl')).map((x) => x.id)).toEqual(['a', 'c']);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'eval-report.json'), 'utf8')) as EvalReport;
  expect(report.instructions).toBe(4);
  expect(report.crr.overall.total).toBe(2);
  expect(report.failures.map((f) => [f.id, f.stage])).toEqual([
    ['b', 'answer'],
    ['d', 'answer'],
  ]);
  for (const f of report.failures) expect(f.reason).toMatch(/400|refused|Rejected/i);
  expect(fs.readFileSync(path.join(out, 'eval-report.md'), 'utf8')).toMatch(
    /## Failed instructions[\s\S]*\| b \| x \| answer \|/,
  );
});

test('recorded eval histories replay without nondeterminism errors', async () => {
  const ids: string[] = [evalId];
  for await (const wf of w.client.workflow.list({
    query: `WorkflowId STARTS_WITH "${evalId}/"`,
  }) as AsyncIterable<WorkflowExecutionDescription>) {
    ids.push(wf.workflowId);
    if (ids.length > 12) break;
  }
  expect(ids.some((id) => id.includes('/chunk-'))).toBe(true);
  expect(ids.some((id) => /\/i\d+$/.test(id))).toBe(true);
  await expectReplays(w.client, ids, 'eval-e2e');
});
