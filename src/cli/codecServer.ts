import { Option } from 'commander';
import { UsageError, portOption, valueError, type CommandSpec } from './command';
import { sharedOptions, type JsonOption } from './options';
import { codecFromEnv } from '../codec/converter';
import { KEY_ENV, KEY_FILE_ENV } from '../codec/keys';
import { startCodecServer } from '../codec/server';

export const DEFAULT_CORS_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];

/** `--cors-origin`: repeatable and comma-separated; each an origin, or '*'. */
function corsOrigin(value: string, previous: string[] | undefined): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const o of list) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) {
      throw valueError(
        '--cors-origin',
        "an origin like http://localhost:8233 (scheme://host[:port]) or '*'",
        o,
      );
    }
  }
  return [...(previous ?? []), ...list];
}

interface CodecServerOptions extends JsonOption {
  port: number;
  host: string;
  corsOrigin?: string[];
}

export const codecServerCommand: CommandSpec<CodecServerOptions> = {
  name: 'codec-server',
  summary: 'serve /encode and /decode for the Temporal Web UI and CLI (decrypts encrypted payloads)',
  devTool: true,
  options(cmd) {
    cmd
      .addOption(portOption('--port <n>', 'port to listen on (0 = any free port)', true).default(8888))
      .option(
        '--host <host>',
        'interface to listen on (the server decrypts for anyone who can reach it)',
        '127.0.0.1',
      )
      .addOption(
        new Option(
          '--cors-origin <origin>',
          `browser origin allowed to call it, repeatable or comma-separated (default ${DEFAULT_CORS_ORIGINS.join(', ')})`,
        ).argParser(corsOrigin),
      )
      .addOption(sharedOptions.json('print {"url","port","keyId"} on stdout once listening'));
  },
  help: [
    `Needs the same key as the workers: ${KEY_ENV} (base64 of 32 bytes) or ${KEY_FILE_ENV},`,
    'plus CODECLM_ENCRYPTION_OLD_KEYS for payloads written with rotated-out keys.',
    '',
    'Web UI:  temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888',
    '         (or in the UI: Settings > Codec Server, or TEMPORAL_CODEC_ENDPOINT for the temporalio/ui image)',
    'CLI:     temporal workflow show --workflow-id ID --codec-endpoint http://127.0.0.1:8888',
    'Runs until Ctrl-C or SIGTERM.',
  ],
  async run(options) {
    const { port, host } = options;
    const origins = options.corsOrigin?.length ? options.corsOrigin : DEFAULT_CORS_ORIGINS;
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
    if (options.json)
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
