import fs from 'node:fs';
import path from 'node:path';
import { temporalTarget } from '../src/temporal/connection';
import { tmpDir } from './helpers/env';

/** Temporal connection settings from Temporal's env config conventions; errors name the variable. */
describe('temporalTarget', () => {
  const dir = tmpDir('codeclm-tls-');
  const cert = path.join(dir, 'client.pem');
  const key = path.join(dir, 'client.key');
  const ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(cert, 'CERT');
  fs.writeFileSync(key, 'PRIVATE-KEY-MATERIAL');
  fs.writeFileSync(ca, 'CA');

  test('plain by default; address and namespace from the environment', () => {
    expect(temporalTarget({})).toMatchObject({
      address: '127.0.0.1:7233',
      namespace: 'default',
      explicit: false,
      tls: undefined,
    });
    expect(temporalTarget({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'ns' })).toMatchObject({
      address: 'temporal:7233',
      namespace: 'ns',
      explicit: true,
    });
  });

  test('mTLS from files (or inline PEM), server CA and server name', () => {
    const t = temporalTarget({
      TEMPORAL_ADDRESS: 'x:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(t.tls).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from('CA'),
      clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('PRIVATE-KEY-MATERIAL') },
    });
    const inline = temporalTarget({
      TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT',
      TEMPORAL_TLS_CLIENT_KEY_DATA: 'K',
    });
    expect(inline.tls).toMatchObject({ clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('K') } });
  });

  test('an API key turns TLS on (Temporal Cloud) unless TEMPORAL_TLS=false', () => {
    expect(temporalTarget({ TEMPORAL_API_KEY: 'k' })).toMatchObject({ apiKey: 'k', tls: {} });
    expect(temporalTarget({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).tls).toBe(false);
    expect(temporalTarget({ TEMPORAL_TLS: 'true' }).tls).toEqual({});
  });

  test('bad settings are errors naming the variable, never showing key material', () => {
    expect(() =>
      temporalTarget({
        TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'missing.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      }),
    ).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read .*missing\.pem \(no such file\)/);
    expect(() => temporalTarget({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'nope') })).toThrow(
      /TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read/,
    );
    expect(() => temporalTarget({ TEMPORAL_TLS_CLIENT_CERT_PATH: cert })).toThrow(
      /TEMPORAL_TLS_CLIENT_CERT_PATH is set but TEMPORAL_TLS_CLIENT_KEY_PATH is not/,
    );
    let message = '';
    try {
      temporalTarget({ TEMPORAL_TLS_CLIENT_KEY_PATH: key });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/TEMPORAL_TLS_CLIENT_KEY_PATH is set but TEMPORAL_TLS_CLIENT_CERT_PATH is not/);
    expect(message).not.toContain('PRIVATE-KEY-MATERIAL');
    expect(() => temporalTarget({ TEMPORAL_TLS: 'maybe' })).toThrow(/TEMPORAL_TLS: expected true or false/);
    expect(() => temporalTarget({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toThrow(
      /not supported by the Temporal TypeScript SDK.*TEMPORAL_TLS_SERVER_NAME/,
    );
    expect(() =>
      temporalTarget({
        TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
        TEMPORAL_TLS_CLIENT_CERT_DATA: 'x',
        TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      }),
    ).toThrow(/either TEMPORAL_TLS_CLIENT_CERT_PATH or TEMPORAL_TLS_CLIENT_CERT_DATA/);
  });

  test('the CLI reports a missing certificate as a usage error naming the variable', async () => {
    const { spawnSync } = await import('node:child_process');
    const out = spawnSync(
      process.execPath,
      [path.join(__dirname, '..', 'bin', 'codeclm.js'), 'status', 'some-run'],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: '127.0.0.1:1',
          TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'gone.pem'),
          TEMPORAL_TLS_CLIENT_KEY_PATH: key,
        },
      },
    );
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read .*gone\.pem/);
  });
});
