import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../src/activities';
import { LimiterRegistry, type LimitScope } from '../src/llm/limiter';
import { configSchema, type ResolvedConfig } from '../src/schemas/config';
import type { Usage } from '../src/schemas/records';
import type { RunInput, RunResult } from '../src/schemas/run';
import { freePort, startDevServer, type DevServer } from '../src/temporal/devServer';
import { provisionTemporalCli } from '../src/temporal/provision';
import { codeclmRun } from '../src/workflows/pipeline';
import { createWorker, llmClientFactory } from '../src/worker';
import { runInProcess } from './baseline';
import { measureCost, type CostSizes } from './cost';
import { CURATOR_VERSION, ensureCuratorVenv, startCurator } from './peers';
import { processCpuSeconds, selfCpuSeconds, startSimProcess, type SimProcess } from './procs';
import { compareRows, measureSaturation, recordRequests, type SaturationRow } from './saturation';

/**
 * `codeclm bench`: four measurements in one process, on the offline simulator and a Temporal dev
 * server of its own (free port, temp db). See bench/RESULTS.md for what each number means.
 */
export interface BenchOptions {
  /** A ~1-2 minute version (smaller runs, shorter windows). */
  quick?: boolean;
  /** "Before": no client-side limiter, no adaptive concurrency, workflow bundled at worker start. */
  untuned?: boolean;
  /** Also run the saturation load through Curator (pinned, in a cache venv) on a fresh simulator. */
  peers?: boolean;
  /** Only these sections (default: all). */
  only?: BenchSection[];
  log?: (line: string) => void;
}

export const BENCH_SECTIONS = ['saturation', 'overhead', 'ceiling', 'cost'] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

export interface BenchReport {
  saturation?: Record<string, unknown>;
  /** With --peers: codeclm's and Curator's saturation rows from the same run, and their ratios. */
  peers?: Record<string, unknown>;
  overhead?: Record<string, unknown>;
  ceiling?: Record<string, unknown>;
  /** From the overhead run. */
  efficiency?: Record<string, unknown>;
  /** Online vs answers and judging through the Batch API: cost per kept pair and wall time. */
  cost?: Record<string, unknown>;
}

interface Sizes {
  sat: {
    rpm: number;
    size: number;
    concurrency: number;
    poolSize: number;
    warmupS: number;
    measureS: number;
  };
  over: { size: number; concurrency: number; poolSize: number };
  ceil: { size: number; concurrency: number; poolSize: number };
  cost: CostSizes;
}

const FULL: Sizes = {
  sat: { rpm: 600, size: 600, concurrency: 192, poolSize: 40, warmupS: 20, measureS: 120 },
  over: { size: 120, concurrency: 24, poolSize: 12 },
  ceil: { size: 160, concurrency: 32, poolSize: 16 },
  cost: { size: 24, concurrency: 24, poolSize: 12, batchDelayMs: 3000 },
};
const QUICK: Sizes = {
  sat: { rpm: 600, size: 300, concurrency: 64, poolSize: 20, warmupS: 8, measureS: 25 },
  over: { size: 30, concurrency: 12, poolSize: 6 },
  ceil: { size: 30, concurrency: 16, poolSize: 6 },
  cost: { size: 12, concurrency: 12, poolSize: 6, batchDelayMs: 2000 },
};

const SIM_LATENCY_MS = 1000;
const SEEDS = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
const calls = (u: Usage) => Object.values(u).reduce((s, c) => s + c.calls, 0);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function benchConfig(
  baseURL: string,
  o: { size: number; concurrency: number; poolSize: number; rpm?: number },
): ResolvedConfig {
  const base = configSchema.parse({});
  // Roles never bind on maxConcurrency here: the pipeline's window (limits.concurrency) does,
  // identically for the in-process baseline and the durable pipeline.
  const role = (model: string) => ({ ...base.roles.strong, baseURL, model, maxConcurrency: 256, rpm: o.rpm });
  return {
    roles: {
      strong: role('sim-strong'),
      target: role('sim-target'),
      judge: { ...role('sim-strong'), temperature: 0 },
    },
    method: { ...base.method, poolSize: o.poolSize },
    limits: { ...base.limits, size: o.size, concurrency: o.concurrency, topUpRounds: 0 },
  };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const sizes = opts.quick ? QUICK : FULL;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-bench-'));
  const env = { ...process.env, OPENAI_API_KEY: '' };
  const server = await startDevServer({
    dbFile: path.join(dir, 'temporal.db'),
    port: await freePort(),
    headless: true,
    log: () => undefined,
  });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  let n = 0;
  const fresh = (name: string) => `bench-${name}-${process.pid}-${++n}`;

  /** A worker on its own queue, LLM clients with their own limiter registry (or none, untuned). */
  async function startWorker(name: string, scope: LimitScope) {
    const taskQueue = fresh(name);
    const limits: LimiterRegistry | false = opts.untuned ? false : new LimiterRegistry({ scope });
    const t0 = Date.now();
    const worker: Worker = await createWorker({
      connection: nativeConnection,
      taskQueue,
      concurrency: 200,
      deps: { llm: llmClientFactory(env, undefined, limits) },
      prebuiltBundle: !opts.untuned,
      env,
    });
    const startSeconds = (Date.now() - t0) / 1000;
    const running = worker.run();
    return {
      taskQueue,
      limits: limits as LimiterRegistry | false,
      startSeconds,
      async stop() {
        worker.shutdown();
        await running.catch(() => undefined);
      },
    };
  }
  const inputFor = (name: string, config: ResolvedConfig, taskQueue?: string): RunInput => {
    const runId = fresh(name);
    return { runId, seedsFile: SEEDS, outDir: path.join(dir, runId), skipInvalid: false, config, taskQueue };
  };
  const deps = (limits: LimiterRegistry | false): ActivityDeps => ({
    llm: llmClientFactory(env, undefined, limits),
    now: Date.now,
  });

  const sims: SimProcess[] = [];
  const sim = async (o: { latencyMs: number; rpm?: number; batchDelayMs?: number }) => {
    const s = await startSimProcess({ ...o, seed: 11 });
    sims.push(s);
    return s;
  };

  try {
    log(`bench: Temporal dev server on ${server.address} (pid ${server.process.pid}), state in ${dir}`);

    const report: BenchReport = {};
    const want = (section: BenchSection) => !opts.only || opts.only.includes(section);
    // Python is needed only for --peers; install Curator first so a failure shows before the runs.
    const curatorPython = opts.peers ? ensureCuratorVenv(log) : undefined;

    // --- saturation -------------------------------------------------------------------------------
    if (want('saturation') || opts.peers) {
      const S = sizes.sat;
      log(
        `bench: saturation: cap ${S.rpm} rpm, ~${SIM_LATENCY_MS} ms latency, ${S.warmupS}s warm-up + ${S.measureS}s measured`,
      );
      const satSim = await sim({ latencyMs: SIM_LATENCY_MS, rpm: S.rpm });
      // With --peers, the bodies codeclm sends are kept for Curator (installed before the clients exist).
      const recording = opts.peers ? recordRequests(satSim.url) : undefined;
      // The simulator's cap is one window for the whole server, so the bench's roles share one bucket.
      const satWorker = await startWorker('sat', 'endpoint');
      const satInput = inputFor('sat', benchConfig(satSim.url, S), satWorker.taskQueue);
      const handle = await client.workflow.start(codeclmRun, {
        workflowId: satInput.runId,
        taskQueue: satWorker.taskQueue,
        args: [satInput],
      });
      const row = await measureSaturation(satSim, S);
      // The limiter as the measured window ended (before the run is terminated).
      const limiterAtEnd = satWorker.limits
        ? satWorker.limits.snapshot().map(({ bucket: _b, ...rest }) => rest)
        : 'off';
      // The peer gets a little more load than codeclm sent in its window, so it never runs dry
      // before its own window ends (its first requests go out later after a Python start).
      if (recording) await sleep(15_000);
      await handle.terminate('bench window over').catch(() => undefined);
      await satWorker.stop();
      recording?.stop();
      const saturation = {
        ...row,
        simLatencyMs: SIM_LATENCY_MS,
        pipelineConcurrency: S.concurrency,
        limiter: limiterAtEnd,
      };
      log(`bench: saturation: ${JSON.stringify(saturation)}`);
      report.saturation = saturation;
      await satSim.stop();

      if (opts.peers && recording && curatorPython) {
        const requestsFile = path.join(dir, 'saturation-requests.jsonl');
        fs.writeFileSync(requestsFile, recording.bodies.map((b) => `${b}\n`).join(''));
        log(
          `bench: peers: Curator ${CURATOR_VERSION} (online, max_requests_per_minute=${S.rpm}) replays codeclm's ${recording.bodies.length} requests on a fresh simulator`,
        );
        const peerSim = await sim({ latencyMs: SIM_LATENCY_MS, rpm: S.rpm });
        const curator = startCurator({
          python: curatorPython,
          requestsFile,
          baseURL: peerSim.url,
          rpm: S.rpm,
          workDir: dir,
        });
        const early = curator.exited.then((e) => {
          throw new Error(
            `bench: peers: Curator exited (code ${e.code}) before its window ended:\n${e.stderrTail}`,
          );
        });
        let peerRow: SaturationRow;
        try {
          peerRow = await Promise.race([measureSaturation(peerSim, S), early]);
        } finally {
          early.catch(() => undefined);
          await curator.stop();
          await peerSim.stop();
        }
        report.peers = {
          load: {
            requests: recording.bodies.length,
            note: "the request bodies codeclm's saturation run sent, in order, replayed through Curator",
          },
          rows: { codeclm: row, [`curator ${CURATOR_VERSION}`]: peerRow },
          codeclmOverCurator: compareRows(row, peerRow),
        };
        log(`bench: peers: ${JSON.stringify(report.peers)}`);
      }
    }

    if (want('overhead')) {
      // --- overhead: in-process pool vs durable pipeline, side by side --------------------------------
      const O = sizes.over;
      log(
        `bench: overhead: size ${O.size}, concurrency ${O.concurrency}, ~${SIM_LATENCY_MS} ms latency; both at once`,
      );
      const [simA, simB] = await Promise.all([
        sim({ latencyMs: SIM_LATENCY_MS }),
        sim({ latencyMs: SIM_LATENCY_MS }),
      ]);
      const overWorker = await startWorker('over', 'model');
      const baseInput = inputFor('over-inproc', benchConfig(simA.url, O));
      const durInput = inputFor('over-durable', benchConfig(simB.url, O), overWorker.taskQueue);
      const serverCpu0 = processCpuSeconds(server.process.pid);
      const [inproc, durable] = await Promise.all([
        runInProcess(baseInput, deps(opts.untuned ? false : new LimiterRegistry())),
        client.workflow.execute(codeclmRun, {
          workflowId: durInput.runId,
          taskQueue: overWorker.taskQueue,
          args: [durInput],
        }) as Promise<RunResult>,
      ]);
      const serverCpuOver = (processCpuSeconds(server.process.pid) ?? NaN) - (serverCpu0 ?? NaN);
      await overWorker.stop();
      const side = (kept: number, wall: number, usage: Usage) => ({
        keptPairs: kept,
        wallSeconds: round(wall, 2),
        pairsPerSecond: round(kept / wall, 4),
        llmCalls: calls(usage),
      });
      const inSide = side(inproc.kept, inproc.wallSeconds, inproc.usage);
      const durSide = side(durable.counters.kept, durable.wallSeconds, durable.usage);
      const overhead = {
        simLatencyMs: SIM_LATENCY_MS,
        size: O.size,
        concurrency: O.concurrency,
        inProcess: inSide,
        durable: { ...durSide, serverCpuSeconds: round(serverCpuOver, 2) },
        durableOverInProcess: round(durSide.pairsPerSecond / inSide.pairsPerSecond),
        // Same seeds and simulator seed: the two sides should keep about the same pairs.
        note: 'both sides ran at the same time on separate simulator processes with the same seed; a request waits a latency fixed by its content, so the same call waits the same on both sides',
      };
      log(`bench: overhead: ${JSON.stringify(overhead)}`);
      await Promise.all([simA.stop(), simB.stop()]);

      // --- efficiency: calls and tokens per kept pair, per stage (the durable 1 s latency run) ---------
      const kept = Math.max(1, durable.counters.kept);
      const byStage: Record<
        string,
        { calls: number; tokens: number; callsPerKeptPair: number; tokensPerKeptPair: number }
      > = {};
      for (const [key, cell] of Object.entries(durable.usage)) {
        const stage = key.split('/')[0]!;
        const s = (byStage[stage] ??= { calls: 0, tokens: 0, callsPerKeptPair: 0, tokensPerKeptPair: 0 });
        s.calls += cell.calls;
        s.tokens += cell.promptTokens + cell.completionTokens;
      }
      let totalCalls = 0;
      let totalTokens = 0;
      for (const s of Object.values(byStage)) {
        s.callsPerKeptPair = round(s.calls / kept, 2);
        s.tokensPerKeptPair = round(s.tokens / kept, 0);
        totalCalls += s.calls;
        totalTokens += s.tokens;
      }
      const c = durable.counters;
      const efficiency = {
        run: 'overhead/durable',
        keptPairs: c.kept,
        instructions: c.instructions,
        dropped: c.dropped,
        failed: c.failed,
        keptByIteration: c.keptByIteration,
        poolEntries: c.pool,
        perKeptPair: { calls: round(totalCalls / kept, 2), tokens: round(totalTokens / kept, 0) },
        byStage,
      };
      log(`bench: efficiency: ${JSON.stringify(efficiency)}`);
      report.overhead = overhead;
      report.efficiency = efficiency;
    }

    if (want('ceiling')) {
      // --- ceiling: zero latency -----------------------------------------------------------------------
      const C = sizes.ceil;
      log(`bench: ceiling: zero latency, size ${C.size}, concurrency ${C.concurrency}`);
      const ceilSim = await sim({ latencyMs: 0 });
      const b0 = { cpu: selfCpuSeconds(), sim: ceilSim.cpuSeconds() ?? NaN, t: Date.now() };
      const baseCeil = await runInProcess(
        inputFor('ceil-inproc', benchConfig(ceilSim.url, C)),
        deps(opts.untuned ? false : new LimiterRegistry()),
      );
      const b1 = { cpu: selfCpuSeconds(), sim: ceilSim.cpuSeconds() ?? NaN, t: Date.now() };
      const ceilWorker = await startWorker('ceil', 'model');
      const d0 = {
        cpu: selfCpuSeconds(),
        server: processCpuSeconds(server.process.pid) ?? NaN,
        sim: ceilSim.cpuSeconds() ?? NaN,
        t: Date.now(),
      };
      const ceilInput = inputFor('ceil-durable', benchConfig(ceilSim.url, C), ceilWorker.taskQueue);
      const durCeil = (await client.workflow.execute(codeclmRun, {
        workflowId: ceilInput.runId,
        taskQueue: ceilWorker.taskQueue,
        args: [ceilInput],
      })) as RunResult;
      const d1 = {
        cpu: selfCpuSeconds(),
        server: processCpuSeconds(server.process.pid) ?? NaN,
        sim: ceilSim.cpuSeconds() ?? NaN,
        t: Date.now(),
      };
      await ceilWorker.stop();
      const baseCalls = calls(baseCeil.usage);
      const durCalls = calls(durCeil.usage);
      const per1000 = (cpu: number, n: number) => round((cpu / Math.max(1, n)) * 1000, 2);
      const durWall = (d1.t - d0.t) / 1000;
      const baseWall = (b1.t - b0.t) / 1000;
      const ceiling = {
        durable: {
          llmCalls: durCalls,
          keptPairs: durCeil.counters.kept,
          wallSeconds: round(durWall, 2),
          callsPerSecond: round(durCalls / durWall, 1),
          serverCpuSecondsPer1000Calls: per1000(d1.server - d0.server, durCalls),
          workerCpuSecondsPer1000Calls: per1000(d1.cpu - d0.cpu, durCalls),
          simulatorCpuSecondsPer1000Calls: per1000(d1.sim - d0.sim, durCalls),
          workerStartSeconds: round(ceilWorker.startSeconds, 2),
        },
        inProcess: {
          llmCalls: baseCalls,
          keptPairs: baseCeil.kept,
          wallSeconds: round(baseWall, 2),
          callsPerSecond: round(baseCalls / baseWall, 1),
          cpuSecondsPer1000Calls: per1000(b1.cpu - b0.cpu, baseCalls),
          simulatorCpuSecondsPer1000Calls: per1000(b1.sim - b0.sim, baseCalls),
        },
        durableOverInProcess: round(durCalls / durWall / (baseCalls / baseWall)),
        machine: machine(),
      };
      log(`bench: ceiling: ${JSON.stringify(ceiling)}`);

      report.ceiling = ceiling;
    }

    if (want('cost')) {
      // --- cost: online vs answers and judging through the Batch API, side by side -------------------
      const C = sizes.cost;
      log(
        `bench: cost: size ${C.size}, ~${SIM_LATENCY_MS} ms latency online, ${C.batchDelayMs} ms per batch; both at once`,
      );
      const costWorker = await startWorker('cost', 'model');
      try {
        report.cost = (await measureCost(
          {
            sim,
            config: (url) => benchConfig(url, C),
            run: async (name, config) => {
              const input = inputFor(name, config, costWorker.taskQueue);
              return (await client.workflow.execute(codeclmRun, {
                workflowId: input.runId,
                taskQueue: costWorker.taskQueue,
                args: [input],
              })) as RunResult;
            },
            log,
          },
          C,
          SIM_LATENCY_MS,
        )) as unknown as Record<string, unknown>;
        log(`bench: cost: ${JSON.stringify(report.cost)}`);
      } finally {
        await costWorker.stop();
      }
    }
    return report;
  } finally {
    await Promise.all(sims.map((s) => s.stop().catch(() => undefined)));
    await client.connection.close().catch(() => undefined);
    await nativeConnection.close().catch(() => undefined);
    await stopServer(server);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function stopServer(server: DevServer): Promise<void> {
  await server.stop().catch(() => undefined);
}

let cliVersion: string | undefined;
function machine(): Record<string, unknown> {
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverage1m: round(os.loadavg()[0]!, 2),
    node: process.version,
    temporalCli: cliVersion,
  };
}

/** The Temporal CLI version, looked up once before the runs. */
export async function describeTemporalCli(): Promise<void> {
  try {
    const bin = await provisionTemporalCli({ log: () => undefined });
    cliVersion = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    cliVersion = 'unknown';
  }
}
