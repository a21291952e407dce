import path from 'node:path';
import type { Command as Commander } from 'commander';
import { localPathOption, type CommandSpec } from '../cli/command';
import { sharedOptions, type ConfigOption, type JsonOption } from '../cli/options';
import { cacheSectionOf, resolveCacheSettings } from './settings';
import { CacheStore } from './store';

interface CacheOptions extends ConfigOption, JsonOption {
  dir?: string;
}

/** The options both subcommands take: which cache, and how to print. */
function cacheOptions(cmd: Commander): void {
  cmd
    .addOption(
      localPathOption(
        '--dir <dir>',
        "the cache directory (default: CODECLM_CACHE if it names one, the config's cache.dir, or .codeclm/cache)",
        "a shared S3 tier is CODECLM_CACHE_STORE=s3://... or the config's cache.store",
      ),
    )
    .addOption(sharedOptions.config('read cache.dir / cache.maxMegabytes from this config file'))
    .addOption(sharedOptions.json());
}

function openCache(options: CacheOptions) {
  const settings = resolveCacheSettings(process.env, cacheSectionOf(options.config));
  const dir = path.resolve(options.dir ?? settings.dir);
  return { settings, dir, store: new CacheStore(dir, { maxMegabytes: settings.maxMegabytes }) };
}

/** `codeclm cache stats|clear`: the LLM result cache of this machine (src/cache). */
export const cacheCommand: CommandSpec = {
  name: 'cache',
  summary: 'show or clear the LLM result cache of this machine (stats, clear)',
  help: [
    'The cache keeps successful, validated LLM results by content address (role, model, endpoint,',
    'temperature, max tokens, response format and the request messages), so refreshes and re-runs pay',
    'only for new requests. A cached run is reproducible; for fresh samples turn it off.',
    'Env: CODECLM_CACHE=off|on|DIR, CODECLM_CACHE_MAX_MB=N (evicts least recently used entries above N MB).',
  ],
  subcommands: [
    {
      name: 'stats',
      summary: 'entries, size and age of the cache',
      options: cacheOptions,
      async run(options: CacheOptions) {
        const { settings, store } = openCache(options);
        const stats = store.stats();
        const enabled = settings.enabled || !!process.env.JEST_WORKER_ID;
        if (options.json) process.stdout.write(`${JSON.stringify({ ...stats, enabled })}\n`);
        else {
          const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
          process.stdout.write(
            [
              `cache ${stats.dir}${enabled ? '' : ' (turned off for workers by CODECLM_CACHE / config)'}`,
              `  ${stats.entries} entries, ${mb(stats.bytes)}${stats.maxBytes ? ` of ${mb(stats.maxBytes)} max` : ' (no size limit)'}`,
              ...(stats.entries ? [`  oldest ${stats.oldest}, newest ${stats.newest} (by last use)`] : []),
              '',
            ].join('\n'),
          );
        }
        return 0;
      },
    },
    {
      name: 'clear',
      summary: 'remove every entry of the cache',
      options: cacheOptions,
      async run(options: CacheOptions) {
        const { dir, store } = openCache(options);
        const { removed, bytes } = store.clear();
        if (options.json) process.stdout.write(`${JSON.stringify({ dir, removed, bytes })}\n`);
        else
          process.stdout.write(
            `cleared ${removed} entries (${(bytes / 1024 / 1024).toFixed(2)} MB) from ${dir}\n`,
          );
        return 0;
      },
    },
  ] as CommandSpec<never>[],
};
