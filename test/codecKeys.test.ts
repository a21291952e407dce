import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  AesGcmCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  keyFingerprint,
  keyringFromEnv,
} from '../src/codec';
import { startCodecServer } from '../src/codec/server';
import { temporalTarget } from '../src/temporal/connection';
import { tmpDir } from './helpers/env';

/** The AES-GCM codec, its keys from the environment, rotation, and the codec server's HTTP contract. */

const keyA = crypto.randomBytes(32).toString('base64');
const keyB = crypto.randomBytes(32).toString('base64');
const text = (p: Payload) => Buffer.from(p.data ?? []).toString('utf8');
const meta = (p: Payload, k: string) => Buffer.from(p.metadata?.[k] ?? []).toString('utf8');
const secretSeed = 'Summarise the quarterly numbers for ACME-SECRET-PROJECT';

describe('keys from the environment', () => {
  test('off by default', () => {
    expect(keyringFromEnv({})).toBeUndefined();
    expect(temporalTarget({}).dataConverter).toBeUndefined();
  });

  test('CODECLM_ENCRYPTION_KEY turns it on; the id defaults to a fingerprint, not the key', () => {
    const ring = keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyA })!;
    expect(ring.currentId).toBe(keyFingerprint(Buffer.from(keyA, 'base64')));
    expect(ring.currentId).toMatch(/^k-[0-9a-f]{12}$/);
    expect(temporalTarget({ CODECLM_ENCRYPTION_KEY: keyA }).dataConverter?.payloadCodecs).toHaveLength(1);
    expect(
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyA, CODECLM_ENCRYPTION_KEY_ID: 'k2025' })!.currentId,
    ).toBe('k2025');
  });

  test.each([
    [
      'short',
      crypto.randomBytes(16).toString('base64'),
      /CODECLM_ENCRYPTION_KEY: the key is 16 bytes; AES-256 needs exactly 32/,
    ],
    ['not base64', 'this is not a key!!', /CODECLM_ENCRYPTION_KEY: not valid base64/],
    ['long', crypto.randomBytes(48).toString('base64'), /CODECLM_ENCRYPTION_KEY: the key is 48 bytes/],
  ])('a bad key (%s) is an error naming the variable, never echoing the key', (_n, bad, msg) => {
    let err: Error | undefined;
    try {
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY: bad });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(msg);
    expect(err?.message).not.toContain(bad);
    // The CLI surfaces it the same way when connecting.
    expect(() => temporalTarget({ CODECLM_ENCRYPTION_KEY: bad })).toThrow(msg);
  });

  test('old keys: ID:BASE64 or bare BASE64, comma or whitespace separated; errors name the entry', () => {
    const ring = keyringFromEnv({
      CODECLM_ENCRYPTION_KEY: keyB,
      CODECLM_ENCRYPTION_KEY_ID: 'new',
      CODECLM_ENCRYPTION_OLD_KEYS: `old:${keyA}, ${keyA}`,
    })!;
    expect([...ring.keys.keys()].sort()).toEqual(
      ['new', 'old', keyFingerprint(Buffer.from(keyA, 'base64'))].sort(),
    );
    const short = crypto.randomBytes(8).toString('base64');
    expect(() =>
      keyringFromEnv({
        CODECLM_ENCRYPTION_KEY: keyB,
        CODECLM_ENCRYPTION_OLD_KEYS: `old:${keyA},older:${short}`,
      }),
    ).toThrow(/CODECLM_ENCRYPTION_OLD_KEYS entry 2 \(key id "older"\): the key is 8 bytes/);
    expect(() => keyringFromEnv({ CODECLM_ENCRYPTION_OLD_KEYS: `old:${keyA}` })).toThrow(
      /neither CODECLM_ENCRYPTION_KEY nor CODECLM_ENCRYPTION_KEY_FILE/,
    );
  });

  test('a key file holds several ids; the first is current unless CODECLM_ENCRYPTION_KEY_ID says otherwise', () => {
    const file = path.join(tmpDir('codeclm-keys-'), 'keys');
    fs.writeFileSync(file, `# codeclm payload keys, newest first\n2025-06:${keyB}\n\n2025-01:${keyA}\n`);
    const ring = keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: file })!;
    expect(ring.currentId).toBe('2025-06');
    expect(ring.keys.size).toBe(2);
    expect(
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: file, CODECLM_ENCRYPTION_KEY_ID: '2025-01' })!.currentId,
    ).toBe('2025-01');
    expect(() =>
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: file, CODECLM_ENCRYPTION_KEY_ID: 'nope' }),
    ).toThrow(/no key with id "nope"/);
    fs.writeFileSync(file, `a:${keyA}\nb:tooshort\n`);
    expect(() => keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: file })).toThrow(
      /CODECLM_ENCRYPTION_KEY_FILE \(.*\) line 2 \(key id "b"\): the key is 6 bytes/,
    );
    expect(() => keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: `${file}.missing` })).toThrow(
      /CODECLM_ENCRYPTION_KEY_FILE: cannot read .*ENOENT/,
    );
    expect(() => keyringFromEnv({ CODECLM_ENCRYPTION_KEY_FILE: file, CODECLM_ENCRYPTION_KEY: keyA })).toThrow(
      /either/,
    );
  });
});

describe('AES-256-GCM codec', () => {
  const codecA = new AesGcmCodec(
    keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyA, CODECLM_ENCRYPTION_KEY_ID: 'a' })!,
  );

  test('round trip; the encrypted payload shows neither text nor key; each encode uses a fresh IV', async () => {
    const plain = defaultPayloadConverter.toPayload({ instruction: secretSeed });
    const [e1] = await codecA.encode([plain]);
    const [e2] = await codecA.encode([plain]);
    expect(meta(e1!, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(meta(e1!, KEY_ID_METADATA)).toBe('a');
    expect(Object.keys(e1!.metadata!).sort()).toEqual(['encoding', KEY_ID_METADATA]);
    expect(text(e1!)).not.toContain('ACME');
    expect(Buffer.from(e1!.data!).toString('base64')).not.toContain(keyA);
    expect(Buffer.from(e1!.data!).equals(Buffer.from(e2!.data!))).toBe(false);
    const [back] = await codecA.decode([e1!]);
    expect(defaultPayloadConverter.fromPayload(back!)).toEqual({ instruction: secretSeed });
    expect(meta(back!, 'encoding')).toBe('json/plain');
  });

  test('rotation: payloads written with the old key decode after the key changes; unknown ids and tampering fail clearly', async () => {
    const [old] = await codecA.encode([defaultPayloadConverter.toPayload('written with a')]);
    const rotated = new AesGcmCodec(
      keyringFromEnv({
        CODECLM_ENCRYPTION_KEY: keyB,
        CODECLM_ENCRYPTION_KEY_ID: 'b',
        CODECLM_ENCRYPTION_OLD_KEYS: `a:${keyA}`,
      })!,
    );
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!)).toBe('written with a');
    const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload('written with b')]);
    expect(meta(fresh!, KEY_ID_METADATA)).toBe('b');

    const withoutOld = new AesGcmCodec(
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyB, CODECLM_ENCRYPTION_KEY_ID: 'b' })!,
    );
    await expect(withoutOld.decode([old!])).rejects.toThrow(/key id "a", which is not configured here/);
    const tampered = { ...old!, data: Uint8Array.from(old!.data!, (b, i) => (i === 20 ? b ^ 1 : b)) };
    await expect(codecA.decode([tampered])).rejects.toThrow(/failed authentication/);
    // Wrong key under the right id: same clear error, no key in it.
    const liar = new AesGcmCodec(
      keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyB, CODECLM_ENCRYPTION_KEY_ID: 'a' })!,
    );
    await expect(liar.decode([old!])).rejects.toThrow(/failed authentication/);
    // Payloads written before encryption was on pass through.
    const plain = defaultPayloadConverter.toPayload('plain');
    expect((await codecA.decode([plain]))[0]).toBe(plain);
  });
});

describe('codec server', () => {
  const codec = new AesGcmCodec(keyringFromEnv({ CODECLM_ENCRYPTION_KEY: keyA })!);
  let server: Awaited<ReturnType<typeof startCodecServer>>;
  beforeAll(async () => {
    server = await startCodecServer({ codec, port: 0, corsOrigins: ['http://localhost:8233'] });
  });
  afterAll(() => server.close());

  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  test('/encode then /decode round-trips the Web UI JSON shape', async () => {
    const plain = toJson(defaultPayloadConverter.toPayload({ instruction: secretSeed }));
    const post = (p: string, body: unknown) =>
      fetch(`${server.url}${p}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-namespace': 'default',
          origin: 'http://localhost:8233',
        },
        body: JSON.stringify(body),
      });
    const enc = await post('/encode', { payloads: [plain] });
    expect(enc.status).toBe(200);
    expect(enc.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
    const encoded = (await enc.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(
      'binary/encrypted',
    );
    expect(Buffer.from(encoded.payloads[0]!.data, 'base64').toString()).not.toContain('ACME');
    const dec = await post('/default/decode', encoded);
    expect(dec.status).toBe(200);
    const decoded = (await dec.json()) as { payloads: (typeof plain)[] };
    expect(decoded.payloads).toEqual([plain]);

    const bad = await post('/decode', { nope: 1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/payloads/);
  });

  test('CORS preflight for the Web UI origin; other origins get no CORS headers', async () => {
    const pre = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:8233',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/OPTIONS/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/content-type/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/x-namespace/);
    const other = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
