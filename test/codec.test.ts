import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, type WorkflowExecutionDescription } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { dataConverterFromEnv, codecFromEnv } from '../src/codec/converter';
import { startCodecServer, type CodecServer } from '../src/codec/server';
import { createWorker } from '../src/worker';
import { startOrAttach } from '../src/cli/run';
import { provisionTemporalCli } from '../src/temporal/provision';
import { startSimulator } from '../src/sim/server';
import type { RunResult } from '../src/schemas/run';
import { simConfig } from './helpers/pipeline';
import { testAddress, tmpDir, uniqueQueue } from './helpers/env';
import { readDataset } from './helpers/files';

/**
 * Payload encryption end to end: the pipeline runs with CODECLM_ENCRYPTION_KEY on a real worker and
 * client; every history is read back from the real server with `temporal workflow show --output json`
 * and must hold only binary/encrypted payloads, with no seed or generated text, paths or key in it;
 * the codec server decodes those payloads over HTTP back to the plaintext. Then the key is rotated:
 * a second run writes with the new key, and the old run's payloads still decode.
 */
const run = promisify(execFile);
const seedsFile = path.join(__dirname, '..', 'examples', 'seeds.jsonl');
const seeds = fs
  .readFileSync(seedsFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { instruction: string }).instruction);

const oldKey = crypto.randomBytes(32).toString('base64');
const newKey = crypto.randomBytes(32).toString('base64');
const envOld = { CODECLM_ENCRYPTION_KEY: oldKey, CODECLM_ENCRYPTION_KEY_ID: 'key-2024' };
const envRotated = {
  CODECLM_ENCRYPTION_KEY: newKey,
  CODECLM_ENCRYPTION_KEY_ID: 'key-2025',
  CODECLM_ENCRYPTION_OLD_KEYS: `key-2024:${oldKey}`,
};

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

let temporalCli: string;
let sim: Awaited<ReturnType<typeof startSimulator>>;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  temporalCli = await provisionTemporalCli({ allowInstall: false, log: () => undefined });
  sim = await startSimulator({ port: 0, seed: 11 });
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await sim?.close();
});

async function encryptedWorker(
  dataConverter: DataConverter,
  name: string,
): Promise<{ client: Client; taskQueue: string }> {
  const taskQueue = uniqueQueue(name);
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker: Worker = await createWorker({ connection, taskQueue, dataConverter, concurrency: 32 });
  const running = worker.run();
  const client = new Client({
    connection: await Connection.connect({ address: testAddress() }),
    dataConverter,
  });
  cleanups.push(async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await client.connection.close();
  });
  return { client, taskQueue };
}

async function runPipeline(
  client: Client,
  taskQueue: string,
  runId: string,
  outDir: string,
): Promise<RunResult> {
  const config = simConfig(sim.url, {
    limits: { size: 6, concurrency: 8, topUpRounds: 0, llmMaxAttempts: 10 },
    method: { poolSize: 6, maxIterations: 2 },
  });
  // The CLI's own start (with its memo), so what `codeclm run` sends is what is checked.
  const handle = await startOrAttach(client, {
    runId,
    seedsFile,
    outDir,
    skipInvalid: false,
    config,
    taskQueue,
  });
  return handle.result();
}

/** The run's workflow and all its children, as `temporal workflow show --output json` prints them. */
async function histories(client: Client, runId: string): Promise<Map<string, string>> {
  const ids = [runId];
  for await (const wf of client.workflow.list({
    query: `WorkflowId STARTS_WITH "${runId}/"`,
  }) as AsyncIterable<WorkflowExecutionDescription>) {
    ids.push(wf.workflowId);
  }
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 8) {
    await Promise.all(
      ids.slice(i, i + 8).map(async (id) => {
        const { stdout } = await run(
          temporalCli,
          ['workflow', 'show', '--workflow-id', id, '--output', 'json', '--address', testAddress()],
          {
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        out.set(id, stdout);
      }),
    );
  }
  return out;
}

/** Every Payload in a history JSON: objects with a `metadata.encoding`. */
function payloadsIn(value: unknown, found: JsonPayload[] = []): JsonPayload[] {
  if (Array.isArray(value)) for (const v of value) payloadsIn(v, found);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const meta = o.metadata as Record<string, unknown> | undefined;
    if (meta && typeof meta === 'object' && typeof meta.encoding === 'string') found.push(o as JsonPayload);
    else for (const v of Object.values(o)) payloadsIn(v, found);
  }
  return found;
}

/** Every value under a `payloads` key or a key naming a single payload, whatever its shape. */
function payloadSlots(value: unknown, found: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const v of value) payloadSlots(v, found);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'payloads' && Array.isArray(v)) found.push(...v);
      else if (k === 'indexedFields' || k === 'header')
        continue; // search attributes: none set by codeclm
      else payloadSlots(v, found);
    }
  }
  return found;
}

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/**
 * Bookkeeping that the SDK writes itself, outside the payload codec: a patch marker's name and the
 * TemporalChangeVersion search attribute listing patch names (src/workflows/pipeline.ts versions
 * its workflows). Each plaintext piece is checked to hold only those before it is set aside;
 * everything else stays and must be encrypted like any payload.
 */
const SDK_MARKER_FIELDS = { core_patch: ['deprecated', 'id'] } as Record<string, string[]>;

function withoutSdkBookkeeping(history: unknown): unknown {
  type Marker = { markerName?: string; details?: Record<string, { payloads?: JsonPayload[] }> };
  type Upsert = { searchAttributes?: { indexedFields?: Record<string, JsonPayload> } };
  const h = history as {
    events: {
      markerRecordedEventAttributes?: Marker;
      upsertWorkflowSearchAttributesEventAttributes?: Upsert;
    }[];
  };
  const events = h.events.map((e) => {
    const versions = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    if (versions?.TemporalChangeVersion) {
      const patches = JSON.parse(b64(versions.TemporalChangeVersion.data ?? '')) as unknown[];
      for (const name of patches) expect(name).toMatch(/^[a-z-]+$/);
      const { TemporalChangeVersion: _v, ...rest } = versions;
      return {
        ...e,
        upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: rest } },
      };
    }
    const m = e.markerRecordedEventAttributes;
    if (!m?.details) return e;
    const details: Marker['details'] = {};
    for (const [key, value] of Object.entries(m.details)) {
      const plain = (value.payloads ?? []).filter((p) => b64(p.metadata?.encoding ?? '') === 'json/plain');
      if (plain.length === 0) {
        details[key] = value;
        continue;
      }
      for (const p of plain) {
        const fields = Object.keys(JSON.parse(b64(p.data ?? '')) as object).sort();
        expect([m.markerName, key, fields]).toEqual([
          m.markerName,
          key,
          SDK_MARKER_FIELDS[m.markerName ?? ''],
        ]);
      }
    }
    return { ...e, markerRecordedEventAttributes: { ...m, details } };
  });
  return { ...h, events };
}

async function decodeViaServer(server: CodecServer, payloads: JsonPayload[]): Promise<JsonPayload[]> {
  const res = await fetch(`${server.url}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default' },
    body: JSON.stringify({ payloads }),
  });
  const body = (await res.json()) as { payloads: JsonPayload[]; error?: string };
  if (res.status !== 200) throw new Error(`codec server ${res.status}: ${body.error}`);
  return body.payloads;
}

const firstRun = { id: `codec-a-${Date.now()}`, out: tmpDir('codeclm-codec-a-') };
const secondRun = { id: `codec-b-${Date.now()}`, out: tmpDir('codeclm-codec-b-') };
let firstHistories: Map<string, string>;
let firstPayloads: JsonPayload[];

test('with CODECLM_ENCRYPTION_KEY, every payload of every history on the server is binary/encrypted, with no text, path or key in it', async () => {
  const converter = dataConverterFromEnv(envOld)!;
  expect(converter).toBeDefined();
  const { client, taskQueue } = await encryptedWorker(converter, 'codec-a');
  const result = await runPipeline(client, taskQueue, firstRun.id, firstRun.out);
  expect(result.counters.kept).toBeGreaterThan(0);
  const records = readDataset(firstRun.out);
  expect(records.length).toBe(result.counters.kept);

  firstHistories = await histories(client, firstRun.id);
  expect(firstHistories.size).toBeGreaterThan(3); // the run, its encode chunk, entries, instructions
  firstPayloads = [];
  // Texts that a plaintext history would carry: generated instructions and answers, the run's paths.
  const secrets = [
    ...records.flatMap((r) => [r.instruction, r.response]).map((t) => t.slice(0, 40)),
    firstRun.out,
    seedsFile,
    ...seeds.map((s) => s.slice(0, 40)),
    oldKey,
    Buffer.from(oldKey, 'base64').toString('hex'),
  ];
  for (const [id, json] of firstHistories) {
    const history = withoutSdkBookkeeping(JSON.parse(json));
    const slots = payloadSlots(history);
    const payloads = payloadsIn(history);
    // Every payload slot holds an encrypted payload (the CLI prints plaintext JSON payloads in a
    // decoded shorthand, which would show up here as a non-payload value).
    expect(slots.length).toBeGreaterThan(0);
    for (const slot of slots) {
      const meta = (slot as JsonPayload).metadata ?? {};
      expect([id, meta.encoding && b64(meta.encoding)]).toEqual([id, 'binary/encrypted']);
      expect(b64(meta['encryption-key-id']!)).toBe('key-2024');
    }
    for (const p of payloads) expect([id, b64(p.metadata!.encoding!)]).toEqual([id, 'binary/encrypted']);
    for (const s of secrets) {
      expect([id, json.includes(s)]).toEqual([id, false]);
      expect([id, payloads.some((p) => b64(p.data ?? '').includes(s))]).toEqual([id, false]);
    }
    firstPayloads.push(...payloads);
  }
  expect(firstPayloads.length).toBeGreaterThan(firstHistories.size);

  // The SDK client with the key reads the same run in plaintext (memo, result).
  const described = await client.workflow.getHandle(firstRun.id).describe();
  expect(described.memo).toEqual({ outDir: firstRun.out, seedsFile });
});

test('the codec server decodes those payloads over HTTP back to the plaintext; the CLI decodes through it too', async () => {
  const server = await startCodecServer({ codec: codecFromEnv(envOld)!, port: 0 });
  cleanups.push(() => server.close());
  const decoded = await decodeViaServer(server, firstPayloads);
  expect(decoded).toHaveLength(firstPayloads.length);
  const plaintext = decoded.map((p) => b64(p.data ?? '')).join('\n');
  for (const p of decoded) expect(b64(p.metadata!.encoding!)).not.toBe('binary/encrypted');
  expect(plaintext).toContain(firstRun.out);
  expect(plaintext).toContain(seedsFile);
  const records = readDataset(firstRun.out);
  for (const r of records) expect(plaintext).toContain(JSON.stringify(r.instruction).slice(1, 40));

  // `temporal workflow show --codec-endpoint` (what the CLI and Web UI do) shows the plaintext.
  const { stdout } = await run(
    temporalCli,
    [
      'workflow',
      'show',
      '--workflow-id',
      firstRun.id,
      '--output',
      'json',
      '--address',
      testAddress(),
      '--codec-endpoint',
      server.url,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const shown = payloadsIn(JSON.parse(stdout));
  expect(shown.length).toBeGreaterThan(0);
  for (const p of shown) expect(b64(p.metadata!.encoding!)).toBe('json/plain');
  expect(shown.map((p) => b64(p.data ?? '')).join('\n')).toContain(firstRun.out);
});

test('rotation: after the key changes, new payloads carry the new key id and the old run still decodes', async () => {
  const { client, taskQueue } = await encryptedWorker(dataConverterFromEnv(envRotated)!, 'codec-b');
  const result = await runPipeline(client, taskQueue, secondRun.id, secondRun.out);
  expect(result.counters.seeds).toBe(seeds.length);
  const second = await histories(client, secondRun.id);
  const secondPayloads = [...second.values()].flatMap((j) =>
    payloadsIn(withoutSdkBookkeeping(JSON.parse(j))),
  );
  expect(new Set(secondPayloads.map((p) => b64(p.metadata!['encryption-key-id']!)))).toEqual(
    new Set(['key-2025']),
  );

  const rotated = await startCodecServer({ codec: codecFromEnv(envRotated)!, port: 0 });
  cleanups.push(() => rotated.close());
  const both = await decodeViaServer(rotated, [...firstPayloads, ...secondPayloads]);
  const plaintext = both.map((p) => b64(p.data ?? '')).join('\n');
  expect(plaintext).toContain(firstRun.out);
  expect(plaintext).toContain(secondRun.out);
  // The SDK client with the rotated keyring reads the old run's result.
  const old = await client.workflow.getHandle(firstRun.id).result();
  expect(old.outDir).toBe(firstRun.out);

  // Without the old key listed, the old payloads are refused with a clear error (no key in it).
  const newOnly = await startCodecServer({
    codec: codecFromEnv({ CODECLM_ENCRYPTION_KEY: newKey, CODECLM_ENCRYPTION_KEY_ID: 'key-2025' })!,
    port: 0,
  });
  cleanups.push(() => newOnly.close());
  const err = await decodeViaServer(newOnly, firstPayloads.slice(0, 1)).catch((e: Error) => e.message);
  expect(err).toMatch(/422: payload was encrypted with key id "key-2024", which is not configured here/);
  expect(err).not.toContain(oldKey);
  expect(err).not.toContain(newKey);
});
