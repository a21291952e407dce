import fs from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';

/**
 * Where Temporal is, from the usual TEMPORAL_* variables. Without TEMPORAL_ADDRESS the CLI uses
 * the embedded dev server's default address.
 */
export const EMBEDDED_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TASK_QUEUE = 'codeclm';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** True when TEMPORAL_ADDRESS named a server (so nothing embedded is started). */
  explicit: boolean;
  tls?: ConnectionOptions['tls'];
  apiKey?: string;
}

export function temporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const read = (name: string) => (env[name] ? fs.readFileSync(env[name]!) : undefined);
  const cert = read('TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = read('TEMPORAL_TLS_CLIENT_KEY_PATH');
  const ca = read('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const wantsTls = env.TEMPORAL_TLS === 'true' || !!cert || !!ca || !!apiKey;
  return {
    address: env.TEMPORAL_ADDRESS || EMBEDDED_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    explicit: !!env.TEMPORAL_ADDRESS,
    tls: wantsTls
      ? {
          serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME || undefined,
          serverRootCACertificate: ca,
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : undefined,
    apiKey,
  };
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
  return new Client({ connection, namespace: target.namespace });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const opts: NativeConnectionOptions = { address: target.address, tls: target.tls, apiKey: target.apiKey };
  return NativeConnection.connect(opts);
}
