import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDevServer, type DevServer } from '../src/temporal/devServer';

/**
 * One real Temporal dev server for the whole suite (fresh SQLite state per run). Tests read its
 * address from TEMPORAL_TEST_ADDRESS. Tests that kill or restart a server start their own.
 */
declare global {
  var __codeclmDevServer: DevServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-test-server-'));
  const server = await startDevServer({
    dbFile: path.join(dir, 'temporal.db'),
    port: await freePort(),
    headless: true,
    log: () => undefined,
  });
  globalThis.__codeclmDevServer = server;
  process.env.TEMPORAL_TEST_ADDRESS = server.address;
  process.env.CODECLM_TEST_TMP = dir;
}
