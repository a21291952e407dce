import fs from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { dataConverterFromEnv } from '../codec/converter';
import { InputError } from '../util/errors';

/**
 * Where Temporal is, from the usual TEMPORAL_* variables. Without TEMPORAL_ADDRESS the CLI uses
 * the embedded dev server's default address.
 */
export const EMBEDDED_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TASK_QUEUE = 'codeclm';

/** The task queue runs are started on and workers poll: CODECLM_TASK_QUEUE, else "codeclm". */
export function defaultTaskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.CODECLM_TASK_QUEUE?.trim() || DEFAULT_TASK_QUEUE;
}

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** True when TEMPORAL_ADDRESS named a server (so nothing embedded is started). */
  explicit: boolean;
  tls?: ConnectionOptions['tls'];
  apiKey?: string;
  /** Payload encryption (src/codec) when CODECLM_ENCRYPTION_KEY(_FILE) is set; the SDK default otherwise. */
  dataConverter?: DataConverter;
}

/**
 * Temporal's environment configuration conventions: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS (true/false; on by default with an API key or certificates),
 * TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA and TEMPORAL_TLS_CLIENT_KEY_PATH / _DATA (mTLS),
 * TEMPORAL_TLS_SERVER_CA_CERT_PATH / _DATA, TEMPORAL_TLS_SERVER_NAME. Bad values are errors naming
 * the variable (never printing a key or certificate).
 */
export function temporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const val = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const material = (base: string): Buffer | undefined => {
    const file = val(`${base}_PATH`);
    const data = val(`${base}_DATA`);
    if (file && data) throw new InputError(`set either ${base}_PATH or ${base}_DATA, not both`);
    if (data) return Buffer.from(data);
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(
        `${base}_PATH: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? 'error')})`,
      );
    }
  };
  const cert = material('TEMPORAL_TLS_CLIENT_CERT');
  const key = material('TEMPORAL_TLS_CLIENT_KEY');
  if (!!cert !== !!key) {
    throw new InputError(
      cert
        ? 'TEMPORAL_TLS_CLIENT_CERT_PATH is set but TEMPORAL_TLS_CLIENT_KEY_PATH is not: mTLS needs both the certificate and its key'
        : 'TEMPORAL_TLS_CLIENT_KEY_PATH is set but TEMPORAL_TLS_CLIENT_CERT_PATH is not: mTLS needs both the certificate and its key',
    );
  }
  const ca = material('TEMPORAL_TLS_SERVER_CA_CERT');
  const apiKey = val('TEMPORAL_API_KEY');
  const tlsFlag = boolEnv(env, 'TEMPORAL_TLS');
  if (boolEnv(env, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION')) {
    throw new InputError(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION=true is not supported by the Temporal TypeScript SDK; ' +
        'set TEMPORAL_TLS_SERVER_NAME to the name in the server certificate (and TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA) instead',
    );
  }
  const serverName = val('TEMPORAL_TLS_SERVER_NAME');
  const wantsTls = tlsFlag ?? (!!cert || !!ca || !!apiKey || !!serverName);
  if (tlsFlag === false && (cert || ca || serverName)) {
    throw new InputError(
      'TEMPORAL_TLS=false conflicts with the TEMPORAL_TLS_* certificate/server-name variables that are set',
    );
  }
  return {
    address: val('TEMPORAL_ADDRESS') || EMBEDDED_ADDRESS,
    namespace: val('TEMPORAL_NAMESPACE') || 'default',
    explicit: !!val('TEMPORAL_ADDRESS'),
    tls: wantsTls
      ? {
          serverNameOverride: serverName,
          serverRootCACertificate: ca,
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : tlsFlag === false
        ? false
        : undefined,
    apiKey,
    dataConverter: dataConverterFromEnv(env),
  };
}

function boolEnv(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = env[name]?.trim().toLowerCase();
  if (!v) return undefined;
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new InputError(`${name}: expected true or false, got "${env[name]}"`);
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({
    address: target.address,
    tls: target.tls,
    apiKey: target.apiKey,
  });
  return new Client({ connection, namespace: target.namespace, dataConverter: target.dataConverter });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const opts: NativeConnectionOptions = { address: target.address, tls: target.tls, apiKey: target.apiKey };
  return NativeConnection.connect(opts);
}
