import path from 'node:path';
import { readConfigFile } from '../config/read';
import { cacheSchema, type CacheConfig } from '../schemas/config';
import { CacheStore } from './store';
import { openStore } from '../store/open';
import { resolveLocation } from '../store/store';
import { InputError } from '../util/errors';

/**
 * Where the LLM cache lives and whether it is on, for one worker process.
 *
 * - CODECLM_CACHE=off (or 0/false/no) turns it off; =on (1/true/yes) turns it on at the default
 *   directory; any other value is the directory to use.
 * - CODECLM_CACHE_MAX_MB sizes it (least recently used entries evicted first).
 * - A config file's `cache` section ({enabled, dir, maxMegabytes}) applies where a worker is built
 *   with it; "off" anywhere wins.
 * - CODECLM_CACHE_STORE=s3://bucket/prefix (or the config's `cache.store`) adds a shared tier in
 *   object storage (or a shared directory): a local miss is looked up there, and every new result
 *   is written there too, so a worker on another machine pays only for what changed. The local
 *   directory stays in front of it (hits cost no request). Credentials come from each worker's
 *   own AWS environment, like the run store's.
 * - Default: on, in `.codeclm/cache` (under CODECLM_HOME). Under jest (JEST_WORKER_ID set) the default
 *   is off, so that tests never share answers through a directory they did not choose; tests that
 *   want the cache pass a directory.
 */
export interface CacheSettings {
  enabled: boolean;
  dir: string;
  maxMegabytes?: number;
  /** The shared tier's location (s3://bucket/prefix or a directory), if any. */
  store?: string;
}

const OFF = ['off', '0', 'false', 'no', 'disabled'];
const ON = ['on', '1', 'true', 'yes', 'enabled'];

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.CODECLM_HOME ?? '.codeclm', 'cache');
}

export function resolveCacheSettings(
  env: NodeJS.ProcessEnv = process.env,
  section?: Partial<CacheConfig> | false,
): CacheSettings {
  const raw = env.CODECLM_CACHE?.trim();
  const envOff = raw !== undefined && raw !== '' && OFF.includes(raw.toLowerCase());
  const envOn = raw !== undefined && raw !== '' && ON.includes(raw.toLowerCase());
  const envDir = raw && !envOff && !envOn ? raw : undefined;
  const maxEnv = env.CODECLM_CACHE_MAX_MB?.trim() ? Number(env.CODECLM_CACHE_MAX_MB) : undefined;
  const maxMegabytes = section ? (section.maxMegabytes ?? maxEnv) : maxEnv;
  const dir = path.resolve(envDir ?? (section ? section.dir : undefined) ?? defaultCacheDir(env));
  const underJest =
    !!env.JEST_WORKER_ID &&
    raw === undefined &&
    (section === undefined || (section !== false && section.dir === undefined));
  const enabled = !envOff && section !== false && (section ? section.enabled !== false : true) && !underJest;
  const fromEnv = env.CODECLM_CACHE_STORE?.trim();
  const storeRaw = fromEnv || (section ? section.store : undefined);
  return {
    enabled,
    dir,
    ...(storeRaw ? { store: sharedLocation(storeRaw, fromEnv ? 'CODECLM_CACHE_STORE' : 'cache.store') } : {}),
    maxMegabytes:
      maxMegabytes !== undefined && Number.isFinite(maxMegabytes) && maxMegabytes > 0
        ? maxMegabytes
        : undefined,
  };
}

/** The shared tier's location; a bad s3:// URL is the user's input (exit 2), named by its setting. */
function sharedLocation(location: string, setting: string): string {
  try {
    return resolveLocation(location);
  } catch (err) {
    throw new InputError(`${setting}: ${(err as Error).message}`);
  }
}

/** The `cache` section of a config file (already validated by loadConfig); defaults when absent. */
export function cacheSectionOf(configFile: string | undefined): CacheConfig | undefined {
  if (!configFile) return undefined;
  const { raw } = readConfigFile(configFile);
  const section = (raw as { cache?: unknown } | null)?.cache;
  return section === undefined ? undefined : cacheSchema.parse(section);
}

export function openCache(
  settings: CacheSettings,
  env: NodeJS.ProcessEnv = process.env,
): CacheStore | undefined {
  if (!settings.enabled) return undefined;
  const shared = settings.store ? openStore(settings.store, env) : undefined;
  return new CacheStore(settings.dir, { maxMegabytes: settings.maxMegabytes, shared });
}
