import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './aesGcm';
import { keyringFromEnv } from './keys';

/**
 * The data converter every Temporal client and worker of codeclm uses. Off (undefined: the SDK
 * default) unless CODECLM_ENCRYPTION_KEY or CODECLM_ENCRYPTION_KEY_FILE is set (src/codec/keys.ts);
 * then every payload (workflow and activity inputs and results, memos, signals, queries,
 * heartbeats, failure messages) is AES-256-GCM encrypted before it leaves the process.
 * Search attributes are never encoded by Temporal, so codeclm puts nothing secret in them.
 */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const keyring = keyringFromEnv(env);
  return keyring ? new AesGcmCodec(keyring) : undefined;
}

export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = codecFromEnv(env);
  return codec ? encryptedDataConverter(codec) : undefined;
}

export function encryptedDataConverter(codec: AesGcmCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: require.resolve('./failureConverter') };
}
