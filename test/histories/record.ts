import fs from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startSimulator } from '../../src/sim/server';
import { codeclmRun, pauseSignal, resumeSignal } from '../../src/workflows/pipeline';
import { refineInstruction } from '../../src/workflows/legacy';
import { codeclmEval } from '../../src/workflows/eval';
import { codeclmScheduledRun } from '../../src/workflows/scheduled';
import { batcherWorkflowId } from '../../src/batch/protocol';
import { simConfig, startTestWorker } from '../helpers/pipeline';
import { tmpDir } from '../helpers/env';
import { fastBatchSettings } from '../helpers/config';

/**
 * Records one history of every workflow type of this version into test/histories/<RECORD_AS>/, so
 * that later versions prove they still replay them (test/histories.test.ts replays every directory).
 * Not a test (no `.test.ts`): run it by hand when the workflows change, on the suite's dev server:
 *
 *   RECORD_AS=<version-name> npx jest --testMatch '<rootDir>/test/histories/record.ts'
 *
 * The run is small but takes the paths that matter for replay: several decode batches per entry,
 * duplicate screening, kept, dropped and failed instructions (malformed replies), a pause and resume, continue-as-new of the
 * run and of its entries, and a top-up round. A second, smaller run puts the judge in batch mode
 * (issue 14) to record the batcher workflow: gathering (requests arriving as references into the
 * batch spool, since batch-spool/), submitting, polling with back-off, a failed and an expired line
 * resubmitted, and its end when the run closes.
 */
const name = process.env.RECORD_AS;
const record = name ? test : test.skip;
const History = temporal.api.history.v1.History;

record(
  'record a history of each workflow type',
  async () => {
    const dir = path.join(__dirname, name!);
    fs.mkdirSync(dir, { recursive: true });
    const sim = await startSimulator({ port: 0, seed: 11, malformedRate: 0.25, repeats: { exact: 0.2 } });
    const w = await startTestWorker('record');
    const stamp = Date.now().toString(36);
    const config = simConfig(sim.url, {
      limits: { size: 24, concurrency: 2, topUpRounds: 1, llmMaxAttempts: 1 },
      method: { poolSize: 3, decodeBatch: 2, dedupe: 'exact', theta: 4, maxIterations: 3 },
    });
    const seedsFile = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');
    const common = { seedsFile, skipInvalid: false, config, taskQueue: w.taskQueue };
    try {
      const runId = `rec-run-${stamp}`;
      const run = await w.client.workflow.start(codeclmRun, {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [{ runId, outDir: tmpDir('codeclm-rec-'), ...common, tuning: { maxHistoryEvents: 40 } }],
      });
      await new Promise((r) => setTimeout(r, 1500));
      await run.signal(pauseSignal, 'recording a pause');
      await new Promise((r) => setTimeout(r, 500));
      await run.signal(resumeSignal, {});
      await run.result();

      const scheduledId = `rec-scheduled-${stamp}`;
      await w.client.workflow.execute(codeclmScheduledRun, {
        workflowId: scheduledId,
        taskQueue: w.taskQueue,
        args: [{ scheduleId: 'rec', outDir: tmpDir('codeclm-rec-sched-'), ...common }],
      });

      const legacyId = `rec-legacy-${stamp}/r1-e00000-i0000`;
      await w.client.workflow.execute(refineInstruction, {
        workflowId: legacyId,
        taskQueue: w.taskQueue,
        args: [
          {
            runId: `rec-legacy-${stamp}`,
            outDir: tmpDir('codeclm-rec-legacy-'),
            recordId: 'r1-e00000-i0000',
            metadata: { use_case: 'trip planning', skills: ['budgeting'] },
            rubrics: [{ rubric: 'constraints', action: 'add a budget constraint' }],
            instruction: 'Plan a weekend trip to Lisbon.',
            config,
            taskQueue: w.taskQueue,
          },
        ],
      });

      const evalId = `rec-eval-${stamp}`;
      await w.client.workflow.execute(codeclmEval, {
        workflowId: evalId,
        taskQueue: w.taskQueue,
        args: [
          {
            evalId,
            instructionsFile: path.join(__dirname, '..', '..', 'examples', 'eval', 'instructions.jsonl'),
            outDir: tmpDir('codeclm-rec-eval-'),
            skipInvalid: false,
            config,
            taskQueue: w.taskQueue,
          },
        ],
      });

      const { perType, written } = await writeHistories(w.client, dir, [
        runId,
        scheduledId,
        legacyId,
        evalId,
      ]);
      expect([...perType.keys()].sort()).toEqual(
        [
          'codeclmEval',
          'codeclmRun',
          'codeclmScheduledRun',
          'encodeSeeds',
          'evalChunk',
          'evalInstruction',
          'generateForEntry',
          'refineInstruction',
        ].sort(),
      );
      expect(written).toBeGreaterThan(8);
    } finally {
      await w.stop();
      await sim.close();
    }
  },
  10 * 60_000,
);

record(
  'record a run with the judge in batch mode (the batcher workflow)',
  async () => {
    const dir = path.join(__dirname, name!);
    fs.mkdirSync(dir, { recursive: true });
    process.env.CODECLM_BATCH_TICK_MS = '200';
    const sim = await startSimulator({
      port: 0,
      seed: 7,
      batch: { completionDelayMs: 3000, validatingMs: 50, finalizingMs: 50, failureRate: 0.15, expire: 1 },
    });
    const w = await startTestWorker('record-batch', { cache: false });
    const config = simConfig(sim.url, {
      limits: { size: 4, concurrency: 4, topUpRounds: 0, llmActivityTimeoutMinutes: 30 },
      method: { poolSize: 2 },
    });
    config.roles.judge = { ...config.roles.judge, mode: 'batch', batch: fastBatchSettings };
    const seedsFile = path.join(tmpDir('codeclm-rec-batch-seeds-'), 'seeds.jsonl');
    const examples = path.join(__dirname, '..', '..', 'examples', 'seeds.jsonl');
    const lines = fs
      .readFileSync(examples, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    fs.writeFileSync(seedsFile, lines.slice(0, 4).join('\n') + '\n');
    try {
      const runId = `rec-batch-${Date.now().toString(36)}`;
      await w.client.workflow.execute(codeclmRun, {
        workflowId: runId,
        taskQueue: w.taskQueue,
        args: [
          {
            runId,
            outDir: tmpDir('codeclm-rec-batch-'),
            seedsFile,
            skipInvalid: false,
            config,
            taskQueue: w.taskQueue,
          },
        ],
      });
      // The batcher ends once it sees the run closed: record that end too.
      await w.client.workflow.getHandle(batcherWorkflowId(runId, 'judge')).result();
      const { perType } = await writeHistories(w.client, dir, [runId]);
      expect(perType.get('codeclmBatcher')).toBe(1);
      expect(sim.stats().batch.byStatus.expired).toBe(1);
    } finally {
      await w.stop();
      await sim.close();
    }
  },
  5 * 60_000,
);

/** Every execution of these workflows and their children (continued-as-new segments too), at most eight per type. */
async function writeHistories(
  client: Client,
  dir: string,
  prefixes: string[],
): Promise<{ perType: Map<string, number>; written: number }> {
  const perType = new Map<string, number>();
  let written = 0;
  for (const prefix of prefixes) {
    const query = `WorkflowId = "${prefix}" OR WorkflowId STARTS_WITH "${prefix}/"`;
    for await (const e of client.workflow.list({ query }) as AsyncIterable<WorkflowExecutionDescription>) {
      // (An evaluation has one workflow per instruction: three of them are enough.)
      const seen = perType.get(e.type) ?? 0;
      if (seen >= (e.type === 'evalInstruction' ? 3 : 8)) continue;
      perType.set(e.type, seen + 1);
      const history = await client.workflow.getHandle(e.workflowId, e.runId).fetchHistory();
      const file = `${e.workflowId.replace(/\//g, '__')}@${e.runId}.history.bin`;
      fs.writeFileSync(path.join(dir, file), History.encode(history).finish());
      written++;
    }
  }
  return { perType, written };
}
