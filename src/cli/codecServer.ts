import { UsageError, flag, str, type Command, type ParsedArgs } from './command';
import { codecFromEnv } from '../codec/converter';
import { KEY_ENV, KEY_FILE_ENV } from '../codec/keys';
import { startCodecServer } from '../codec/server';

export const DEFAULT_CORS_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];

function portOpt(args: ParsedArgs): number {
  const v = str(args, 'port');
  if (v === undefined) return 8888;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) {
    throw new UsageError(
      `codeclm codec-server: --port must be a TCP port (0-65535, 0 = any free port), got "${v}"\nusage: codeclm ${codecServerCommand.usage}`,
    );
  }
  return n;
}

function corsOrigins(args: ParsedArgs): string[] {
  const given = args.values['cors-origin'];
  const list = (Array.isArray(given) ? given : typeof given === 'string' ? [given] : [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const o of list) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) {
      throw new UsageError(
        `codeclm codec-server: --cors-origin must be an origin like http://localhost:8233 (scheme://host[:port]) or '*', got "${o}"`,
      );
    }
  }
  return list.length ? list : DEFAULT_CORS_ORIGINS;
}

export const codecServerCommand: Command = {
  name: 'codec-server',
  summary: 'serve /encode and /decode for the Temporal Web UI and CLI (decrypts encrypted payloads)',
  usage: 'codec-server [--port 8888] [--host 127.0.0.1] [--cors-origin ORIGIN]... [--json]',
  details: [
    `Needs the same key as the workers: ${KEY_ENV} (base64 of 32 bytes) or ${KEY_FILE_ENV},`,
    'plus CODECLM_ENCRYPTION_OLD_KEYS for payloads written with rotated-out keys.',
    '--port N            port to listen on (default 8888; 0 = any free port)',
    '--host H            interface to listen on (default 127.0.0.1; the server decrypts for anyone who can reach it)',
    `--cors-origin O     browser origin allowed to call it, repeatable or comma-separated (default ${DEFAULT_CORS_ORIGINS.join(', ')})`,
    '--json              print {"url","port","keyId"} on stdout once listening',
    '',
    'Web UI:  temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888',
    '         (or in the UI: Settings > Codec Server, or TEMPORAL_CODEC_ENDPOINT for the temporalio/ui image)',
    'CLI:     temporal workflow show --workflow-id ID --codec-endpoint http://127.0.0.1:8888',
    'Runs until Ctrl-C or SIGTERM.',
  ],
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'cors-origin': { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length)
      throw new UsageError(
        `codeclm codec-server: unexpected argument "${args.positionals[0]}"\nusage: codeclm ${codecServerCommand.usage}`,
      );
    const port = portOpt(args);
    const host = str(args, 'host') ?? '127.0.0.1';
    const origins = corsOrigins(args);
    const codec = codecFromEnv();
    if (!codec)
      throw new UsageError(
        `codeclm codec-server: encryption is off: set ${KEY_ENV} (base64 of 32 bytes) or ${KEY_FILE_ENV} to the workers' key`,
      );
    const server = await startCodecServer({
      codec,
      port,
      host,
      corsOrigins: origins,
      log: (line) => process.stderr.write(`codeclm codec-server: ${line}\n`),
    });
    if (flag(args, 'json'))
      process.stdout.write(
        `${JSON.stringify({ url: server.url, port: server.port, keyId: codec.currentKeyId })}\n`,
      );
    else
      process.stdout.write(
        `codec server on ${server.url} (current key id ${codec.currentKeyId}; CORS: ${origins.join(', ')})\n`,
      );
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    process.stderr.write('codeclm codec-server: stopped\n');
  },
};
