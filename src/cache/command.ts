import path from 'node:path';
import { flag, str, UsageError, type Command } from '../cli/command';
import { cacheSectionOf, resolveCacheSettings } from './settings';
import { CacheStore } from './store';

/** `codeclm cache stats|clear`: the LLM result cache of this machine (src/cache). */
export const cacheCommand: Command = {
  name: 'cache',
  summary: 'show or clear the LLM result cache of this machine (stats, clear)',
  usage: 'cache stats|clear [--dir DIR] [--config FILE] [--json]',
  details: [
    'The cache keeps successful, validated LLM results by content address (role, model, endpoint,',
    'temperature, max tokens, response format and the request messages), so refreshes and re-runs pay',
    'only for new requests. A cached run is reproducible; for fresh samples turn it off.',
    "--dir DIR       the cache directory (default: CODECLM_CACHE if it names one, the config's cache.dir, or .codeclm/cache)",
    '--config FILE   read cache.dir / cache.maxMegabytes from this config file',
    'Env: CODECLM_CACHE=off|on|DIR, CODECLM_CACHE_MAX_MB=N (evicts least recently used entries above N MB).',
  ],
  options: { dir: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    const sub = args.positionals[0];
    const settings = resolveCacheSettings(process.env, cacheSectionOf(str(args, 'config')));
    const dir = path.resolve(str(args, 'dir') ?? settings.dir);
    const store = new CacheStore(dir, { maxMegabytes: settings.maxMegabytes });
    if (sub === 'stats') {
      const stats = store.stats();
      const enabled = settings.enabled || !!process.env.JEST_WORKER_ID;
      if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ ...stats, enabled })}\n`);
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
    }
    if (sub === 'clear') {
      const { removed, bytes } = store.clear();
      if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ dir, removed, bytes })}\n`);
      else
        process.stdout.write(
          `cleared ${removed} entries (${(bytes / 1024 / 1024).toFixed(2)} MB) from ${dir}\n`,
        );
      return 0;
    }
    throw new UsageError(
      `codeclm cache: ${sub ? `unknown subcommand "${sub}"` : 'a subcommand is required'}\nusage: codeclm ${cacheCommand.usage}`,
    );
  },
};
