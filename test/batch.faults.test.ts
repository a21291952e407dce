import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBatchActivities } from '../src/batch/activities';
import { startSimulator, type Simulator } from '../src/sim/server';
import { FAST_SIM_BATCH } from './helpers/batchCalls';
import { fastBatchSettings, simRole } from './helpers/config';
import { tmpDir } from './helpers/env';

/**
 * Batch mode under faults the provider's network makes: a provider that did what it was asked but
 * whose answer never arrived (the simulator behind a proxy that loses answers).
 */

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 11, batch: FAST_SIM_BATCH });
});
afterAll(async () => {
  await sim?.close();
});

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
  const proxy = await lossyProxy(sim.url, (m, url) => m === 'POST' && url.endsWith('/batches'), 1);
  try {
    const cfg = simRole(proxy.url, { mode: 'batch', batch: { ...fastBatchSettings, spool: tmpDir() } });
    const { batchSubmit } = createBatchActivities(process.env);
    const key = `lost-create-${Date.now()}#0`;
    const input = { cfg, key, spool: cfg.batch!.spool, lines: [line('q1'), line('q2')], parts: [] };
    const before = sim.stats().batch.batchesCreated;
    // The activity as Temporal runs it: attempts until one returns.
    let submitted: Awaited<ReturnType<typeof batchSubmit>> | undefined;
    for (let attempt = 1; !submitted && attempt <= 3; attempt++)
      submitted = await batchSubmit(input).catch(() => undefined);
    expect(sim.stats().batch.batchesCreated - before).toBe(1);
    expect(submitted?.createdNow).toBe(false); // the retry found the batch the lost answer was about
  } finally {
    await proxy.close();
  }
}, 60_000);
