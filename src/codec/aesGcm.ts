import crypto from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Keyring } from './keys';

/**
 * AES-256-GCM PayloadCodec. Each payload (its metadata and data, serialised as the Payload protobuf)
 * becomes one encrypted payload:
 *
 *   metadata  encoding          = "binary/encrypted"
 *             encryption-key-id = the id of the key that wrote it (rotation: any listed key reads)
 *   data      12-byte random IV || ciphertext || 16-byte GCM tag
 *
 * The key id is authenticated too (GCM additional data), so a payload cannot be passed off as
 * written by another key. Payloads not marked binary/encrypted pass through decode unchanged, so
 * histories written before encryption was turned on stay readable.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = 'aes-256-gcm';

const enc = new TextEncoder();
const dec = new TextDecoder();

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  get currentKeyId(): string {
    return this.keyring.currentId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encryptOne(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decryptOne(p));
  }

  encryptOne(payload: Payload): Payload {
    const id = this.keyring.currentId;
    const key = this.keyring.keys.get(id)!;
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = crypto.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const body = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: enc.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: enc.encode(id) },
      data: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    };
  }

  decryptOne(payload: Payload): Payload {
    const encoding = payload.metadata?.encoding;
    if (!encoding || dec.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
    const rawId = payload.metadata?.[KEY_ID_METADATA];
    if (!rawId) throw new DecryptionError(`encrypted payload has no ${KEY_ID_METADATA} metadata`);
    const id = dec.decode(rawId);
    const key = this.keyring.keys.get(id);
    if (!key) {
      throw new DecryptionError(
        `payload was encrypted with key id "${id}", which is not configured here (known: ${[...this.keyring.keys.keys()].join(', ')}); ` +
          'list the old key in CODECLM_ENCRYPTION_OLD_KEYS or the key file',
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new DecryptionError(`encrypted payload (key id "${id}") is truncated`);
    const iv = data.subarray(0, IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const decipher = crypto.createDecipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(tag);
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new DecryptionError(
        `encrypted payload (key id "${id}") failed authentication: wrong key for this id, or the payload was altered`,
      );
    }
    const decoded = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
  }
}
