import fs from 'node:fs';
import path from 'node:path';
import { runInProcess } from '../bench/baseline';
import { benchConfig } from '../bench/bench';
import { processCpuSeconds, selfCpuSeconds } from '../bench/procs';
import { LimiterRegistry } from '../src/llm/limiter';
import { startSimulator, type Simulator } from '../src/sim';
import { llmClientFactory } from '../src/worker';
import { tmpDir } from './helpers/env';

/**
 * The bench's pieces, fast: the in-process baseline (the same stage functions in a plain async
 * pool) on the simulator at zero latency, and the CPU readers. The full bench is `npm run bench`.
 */
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11 });
});
afterAll(async () => {
  await sim.close();
});

test('the in-process baseline runs the pipeline stages end to end and writes the dataset', async () => {
  const outDir = tmpDir('codeclm-bench-');
  const config = benchConfig(sim.url, { size: 8, concurrency: 8, poolSize: 4 });
  const limits = new LimiterRegistry();
  const result = await runInProcess(
    {
      runId: 'bench-test',
      seedsFile: path.join(__dirname, '..', 'examples', 'seeds.jsonl'),
      outDir,
      skipInvalid: false,
      config,
    },
    { llm: llmClientFactory({}, undefined, limits), now: Date.now },
  );
  expect(result.kept + result.dropped + result.failed).toBeGreaterThan(0);
  expect(result.kept).toBeGreaterThan(0);
  const lines = fs.readFileSync(path.join(outDir, 'dataset.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(result.kept);
  const stages = new Set(Object.keys(result.usage).map((k) => k.split('/')[0]));
  for (const s of ['encode', 'rubrics', 'decode', 'answer', 'judge']) expect(stages.has(s)).toBe(true);
  // Every HTTP call went through the limiter.
  const calls = Object.values(result.usage).reduce((n, c) => n + c.calls, 0);
  expect(limits.snapshot().reduce((n, b) => n + b.admitted, 0)).toBe(calls);
  expect(sim.stats().requests).toBe(calls);
});

test('CPU readers: /proc for another process, cpuUsage for this one', () => {
  expect(processCpuSeconds(process.pid)).toBeGreaterThan(0);
  expect(processCpuSeconds(999_999_999)).toBeUndefined();
  expect(selfCpuSeconds()).toBeGreaterThan(0);
});
