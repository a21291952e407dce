import crypto from 'node:crypto';
import fs from 'node:fs';
import { InputError } from '../util/errors';

/**
 * Payload encryption keys, from the environment only (never from a config file that could be
 * committed). Encryption is off unless one of these is set:
 *
 *   CODECLM_ENCRYPTION_KEY        base64 of 32 random bytes (AES-256): the current key.
 *   CODECLM_ENCRYPTION_KEY_FILE   a file of keys, one entry per line (`#` comments, blank lines
 *                                 ignored). The first entry is the current key unless
 *                                 CODECLM_ENCRYPTION_KEY_ID names another one.
 *
 * and, for rotation:
 *
 *   CODECLM_ENCRYPTION_KEY_ID     the id written into new payloads (`encryption-key-id` metadata).
 *                                 Default: the key's fingerprint, "k-" + 12 hex digits of a SHA-256
 *                                 of the key (a fingerprint, not the key).
 *   CODECLM_ENCRYPTION_OLD_KEYS   keys that stay readable but are never used to write: entries
 *                                 separated by commas or whitespace.
 *
 * An entry is `ID:BASE64` or a bare `BASE64` (its id is then its fingerprint). Base64 has no ':',
 * so the two forms cannot be confused. Rotating a key: generate a new one, move the old one into
 * CODECLM_ENCRYPTION_OLD_KEYS (or down in the key file), restart client, workers and codec server.
 * Payloads written with the old key keep decoding as long as the old key stays listed.
 *
 * Error messages name the variable, file and entry, and never contain key material.
 */

export const KEY_ENV = 'CODECLM_ENCRYPTION_KEY';
export const KEY_FILE_ENV = 'CODECLM_ENCRYPTION_KEY_FILE';
export const KEY_ID_ENV = 'CODECLM_ENCRYPTION_KEY_ID';
export const OLD_KEYS_ENV = 'CODECLM_ENCRYPTION_OLD_KEYS';

export const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;

export interface Keyring {
  /** The id new payloads are written with. */
  currentId: string;
  /** Every readable key by id; the current key is among them. */
  keys: Map<string, Buffer>;
}

export class EncryptionKeyError extends InputError {
  override name = 'EncryptionKeyError';
}

/** The id a key gets when none is given: a short fingerprint (safe to show, not the key). */
export function keyFingerprint(key: Buffer): string {
  return `k-${crypto.createHash('sha256').update('codeclm-key-id\0').update(key).digest('hex').slice(0, 12)}`;
}

/** 32 fresh random bytes, base64: what to put in CODECLM_ENCRYPTION_KEY. */
export function generateKey(): string {
  return crypto.randomBytes(KEY_BYTES).toString('base64');
}

/** Decodes one key; `where` names the variable/file/entry for the error (the value is never shown). */
function decodeKey(text: string, where: string): Buffer {
  const t = text.trim();
  if (!t)
    throw new EncryptionKeyError(
      `${where}: empty key; expected base64 of ${KEY_BYTES} random bytes (e.g. \`openssl rand -base64 32\`)`,
    );
  if (!BASE64.test(t)) {
    throw new EncryptionKeyError(
      `${where}: not valid base64; expected base64 of ${KEY_BYTES} random bytes (e.g. \`openssl rand -base64 32\`)`,
    );
  }
  const key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  if (key.length !== KEY_BYTES) {
    throw new EncryptionKeyError(
      `${where}: the key is ${key.length} bytes; AES-256 needs exactly ${KEY_BYTES} (base64 of ${KEY_BYTES} random bytes, e.g. \`openssl rand -base64 32\`)`,
    );
  }
  return key;
}

interface Entry {
  id: string;
  key: Buffer;
}

function parseEntry(text: string, where: string): Entry {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const key = decodeKey(text, where);
    return { id: keyFingerprint(key), key };
  }
  const id = text.slice(0, colon).trim();
  if (!KEY_ID.test(id)) {
    throw new EncryptionKeyError(
      `${where}: key id must be 1-64 letters, digits, '.', '_' or '-' (entries are ID:BASE64 or BASE64)`,
    );
  }
  return { id, key: decodeKey(text.slice(colon + 1), `${where} (key id "${id}")`) };
}

function addEntry(keys: Map<string, Buffer>, e: Entry, where: string): void {
  const had = keys.get(e.id);
  if (had && !had.equals(e.key))
    throw new EncryptionKeyError(`${where}: key id "${e.id}" is given twice with different keys`);
  keys.set(e.id, e.key);
}

/** The keyring from the environment, or undefined when encryption is off. Throws on any bad value. */
export function keyringFromEnv(env: NodeJS.ProcessEnv = process.env): Keyring | undefined {
  const value = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const keyText = value(KEY_ENV);
  const keyFile = value(KEY_FILE_ENV);
  const wantedId = value(KEY_ID_ENV);
  const oldText = value(OLD_KEYS_ENV);
  if (!keyText && !keyFile) {
    if (wantedId || oldText) {
      throw new EncryptionKeyError(
        `${wantedId ? KEY_ID_ENV : OLD_KEYS_ENV} is set but neither ${KEY_ENV} nor ${KEY_FILE_ENV} is: encryption needs a current key`,
      );
    }
    return undefined;
  }
  if (keyText && keyFile) throw new EncryptionKeyError(`set either ${KEY_ENV} or ${KEY_FILE_ENV}, not both`);
  if (wantedId !== undefined && !KEY_ID.test(wantedId)) {
    throw new EncryptionKeyError(`${KEY_ID_ENV}: key id must be 1-64 letters, digits, '.', '_' or '-'`);
  }

  const keys = new Map<string, Buffer>();
  let currentId: string;
  if (keyText) {
    const key = decodeKey(keyText, KEY_ENV);
    currentId = wantedId ?? keyFingerprint(key);
    keys.set(currentId, key);
  } else {
    let text: string;
    try {
      text = fs.readFileSync(keyFile!, 'utf8');
    } catch (err) {
      throw new EncryptionKeyError(
        `${KEY_FILE_ENV}: cannot read ${keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const entries: Entry[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return;
      const where = `${KEY_FILE_ENV} (${keyFile}) line ${i + 1}`;
      const e = parseEntry(t, where);
      addEntry(keys, e, where);
      entries.push(e);
    });
    if (entries.length === 0)
      throw new EncryptionKeyError(`${KEY_FILE_ENV} (${keyFile}): no keys in the file`);
    currentId = wantedId ?? entries[0]!.id;
    if (!keys.has(currentId))
      throw new EncryptionKeyError(
        `${KEY_ID_ENV}: no key with id "${currentId}" in ${KEY_FILE_ENV} (${keyFile})`,
      );
  }

  if (oldText) {
    oldText
      .split(/[\s,]+/)
      .filter(Boolean)
      .forEach((t, i) => {
        const where = `${OLD_KEYS_ENV} entry ${i + 1}`;
        const e = parseEntry(t, where);
        if (e.id === currentId && !e.key.equals(keys.get(currentId)!)) {
          throw new EncryptionKeyError(
            `${where}: key id "${e.id}" is the current key's id but the key differs`,
          );
        }
        addEntry(keys, e, where);
      });
  }
  return { currentId, keys };
}

/** Whether encryption is turned on in this environment (without validating the keys). */
export function encryptionRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return !!(env[KEY_ENV]?.trim() || env[KEY_FILE_ENV]?.trim());
}
