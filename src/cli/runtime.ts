import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient, temporalTarget, type TemporalTarget } from '../temporal/connection';
import { startDevServer, temporalAnswers, type DevServer } from '../temporal/devServer';
import { takeLease, type Lease } from './serverLease';

/**
 * The embedded defaults (the README): without TEMPORAL_ADDRESS, `run` and `eval` use a dev server
 * with its state under `.codeclm/` (CODECLM_HOME) on the default address, started on demand.
 */
export function codeclmHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.CODECLM_HOME ?? '.codeclm');
}

export function embeddedPort(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.CODECLM_EMBEDDED_PORT ?? 7233);
}

export interface Embedded {
  target: TemporalTarget;
  /** Set when this process started the server (and so must stop it). */
  server?: DevServer;
}

/**
 * Without TEMPORAL_ADDRESS: a lease that keeps the embedded server (and simulator) another command
 * started from being stopped while this process uses them (src/cli/serverLease.ts). Take it before
 * looking for them; it is released at exit.
 */
export async function leaseEmbedded(env: NodeJS.ProcessEnv = process.env): Promise<Lease | undefined> {
  if (temporalTarget(env).explicit) return undefined;
  return takeLease(embeddedPort(env), { say: (line) => process.stderr.write(`${line}\n`) });
}

export async function ensureTemporal(env: NodeJS.ProcessEnv = process.env): Promise<Embedded> {
  const target = temporalTarget(env);
  if (target.explicit) return { target };
  const port = embeddedPort(env);
  const address = `127.0.0.1:${port}`;
  await leaseEmbedded(env);
  if (await temporalAnswers(address)) {
    process.stderr.write(`codeclm: using the Temporal server already running on ${address}\n`);
    return { target: { ...target, address } };
  }
  const home = codeclmHome(env);
  fs.mkdirSync(home, { recursive: true });
  const server = await startDevServer({ dbFile: path.join(home, 'temporal.db'), port, uiPort: port + 1000 });
  return { target: { ...target, address: server.address }, server };
}

/** A client for the control commands; a clear error when no server answers. */
export async function controlClient(env: NodeJS.ProcessEnv = process.env): Promise<Client> {
  const target = temporalTarget(env);
  const address = target.explicit ? target.address : `127.0.0.1:${embeddedPort(env)}`;
  // Held until this process exits: the server's owner leaves it up for this command.
  await leaseEmbedded(env);
  if (!target.explicit && !(await temporalAnswers(address))) {
    throw new Error(
      `no Temporal server is running at ${address} (the embedded default). Start one with ` +
        '`codeclm server`, or set TEMPORAL_ADDRESS to your cluster.',
    );
  }
  return connectClient({ ...target, address });
}
