import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { codeclmCacheRoot } from '../temporal/provision';

/**
 * Finds (or obtains) a Chromium-family browser that can run headless, for the tests that render
 * report.html and viewer.html in a real browser. Routes, in order (like src/temporal/provision.ts):
 *   1. CODECLM_CHROMIUM, CHROME_PATH, CHROMIUM_PATH   an explicit binary
 *   2. chromium, chromium-browser, google-chrome(-stable), chrome on PATH
 *   3. common install paths (Debian/Ubuntu, snap, /opt, macOS) and codeclm's cache
 *      (~/.cache/codeclm/browser, where route 5 puts its download)
 *   4. `apt-get install chromium`, when running as root or with passwordless sudo (Debian, Ubuntu, CI)
 *   5. the npm package @puppeteer/browsers, which downloads Chrome's headless shell from Google's
 *      Chrome for Testing site (needs internet; what a user's laptop without apt normally takes)
 * Every route tried is reported; when none works, the error lists them and says what to do.
 */

export interface BrowserProvisionOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Routes 4-5 install; off when only an existing browser may be used. */
  allowInstall?: boolean;
  /** Test seam: replaces the common install paths of route 3. */
  commonPaths?: string[];
  /** Test seam: replaces the real routes 4-5. */
  installers?: BrowserInstaller[];
}

export interface BrowserInstaller {
  name: string;
  /** Installs a browser and returns its binary (or throws with the reason, one line first). */
  install(log: (line: string) => void, env: NodeJS.ProcessEnv): Promise<string>;
}

export const BROWSER_ENV_VARS = ['CODECLM_CHROMIUM', 'CHROME_PATH', 'CHROMIUM_PATH'] as const;
const NAMES_ON_PATH = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

export class BrowserProvisionError extends Error {
  override name = 'BrowserProvisionError';
  constructor(readonly attempts: string[]) {
    super(
      'No headless Chromium or Chrome could be found or installed. Routes tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n') +
        '\nInstall one (Debian/Ubuntu: `sudo apt-get install chromium`; elsewhere: ' +
        '`npx @puppeteer/browsers install chrome-headless-shell@stable`) ' +
        'and, if it is not on PATH, set CODECLM_CHROMIUM to its binary.',
    );
  }
}

export function browserCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'browser');
}

export function commonBrowserPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/snap/bin/chromium',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
    '/opt/google/chrome/chrome',
    '/Applications/Chromium.app/Contents/MacOS/Chromium',
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    ...downloadedBrowsers(browserCacheDir(env)),
  ];
}

/** Binaries that @puppeteer/browsers left in `dir` (route 5), newest build directory first. */
function downloadedBrowsers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /^(chrome-headless-shell|chrome|chromium)(\.exe)?$/.test(path.basename(f)))
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile())
    .sort()
    .reverse();
}

/** undefined when `file` answers `--version` like Chromium or Chrome, otherwise why not (one line). */
export function whyNotBrowser(file: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) return `${file} is not a file`;
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `${file} is missing or not executable`;
  }
  const out = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 30_000, env });
  if (out.status !== 0 || !/chrom(e|ium)/i.test(out.stdout)) {
    const said = (out.stderr || out.stdout || String(out.error ?? `exit ${out.status}`)).trim();
    return `${file} --version did not answer like Chromium or Chrome (${said.slice(0, 200)})`;
  }
  return undefined;
}

function onPath(env: NodeJS.ProcessEnv): string[] {
  const found: string[] = [];
  for (const name of NAMES_ON_PATH) {
    for (const dir of (env.PATH ?? '').split(path.delimiter)) {
      if (!dir) continue;
      const candidate = path.join(dir, name);
      if (fs.existsSync(candidate) && !found.includes(candidate)) found.push(candidate);
    }
  }
  return found;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

export async function provisionBrowser(opts: BrowserProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];
  const tried = new Set<string>();
  const check = (where: string, file: string): boolean => {
    if (tried.has(file)) return false;
    tried.add(file);
    const problem = whyNotBrowser(file, env);
    if (problem) attempts.push(`${where}: ${problem}`);
    return problem === undefined;
  };

  for (const name of BROWSER_ENV_VARS) {
    const explicit = env[name];
    if (!explicit) continue;
    if (check(name, explicit)) return explicit;
    // The user asked for this browser: say that it was not used rather than silently take another.
    log(
      `codeclm: warning: ${name} is set but unusable: ${attempts[attempts.length - 1]}; trying the other routes`,
    );
  }
  if (!BROWSER_ENV_VARS.some((n) => env[n])) attempts.push(`${BROWSER_ENV_VARS.join(', ')}: not set`);

  const found = onPath(env);
  if (found.length === 0) attempts.push(`PATH: none of ${NAMES_ON_PATH.join(', ')}`);
  for (const candidate of found) if (check('PATH', candidate)) return candidate;

  const common = (opts.commonPaths ?? commonBrowserPaths(env)).filter((p) => !tried.has(p));
  const present = common.filter((p) => fs.existsSync(p));
  if (present.length === 0) attempts.push(`common paths: none present (${common.length} looked at)`);
  for (const candidate of present) if (check('common paths', candidate)) return candidate;

  if (opts.allowInstall === false) throw new BrowserProvisionError(attempts);

  for (const installer of opts.installers ?? defaultBrowserInstallers()) {
    log(`codeclm: installing a headless browser by ${installer.name} ...`);
    try {
      const binary = await installer.install(log, env);
      const problem = whyNotBrowser(binary, env);
      if (!problem) {
        log(`codeclm: browser ready at ${binary} (installed by ${installer.name})`);
        return binary;
      }
      attempts.push(`${installer.name}: installed, but ${problem}`);
      log(`codeclm:   that did not work: installed, but ${problem}`);
    } catch (err) {
      attempts.push(`${installer.name}: ${firstLine(err)}`);
      log(`codeclm:   that did not work: ${firstLine(err)}`);
    }
  }
  throw new BrowserProvisionError(attempts);
}

function run(cmd: string, args: string[], log: (l: string) => void, env: NodeJS.ProcessEnv): string {
  log(`codeclm:   $ ${cmd} ${args.join(' ')}`);
  const out = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.error) throw new Error(`${cmd} could not run: ${out.error.message}`);
  if (out.status !== 0) {
    // The line that names the error (npx prints usage and a stack around it), else the last lines.
    const lines = (out.stderr || out.stdout).trim().split('\n');
    const said = lines.find((l) => /^(\w*Error|E:)/.test(l.trim())) ?? lines.slice(-3).join(' | ');
    throw new Error(`${cmd} ${args[0] ?? ''} exited ${out.status}: ${said.trim()}`);
  }
  return out.stdout;
}

function commandExists(cmd: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '')
    .split(path.delimiter)
    .some((dir) => dir !== '' && fs.existsSync(path.join(dir, cmd)));
}

export function defaultBrowserInstallers(): BrowserInstaller[] {
  return [
    {
      name: 'apt-get install chromium',
      async install(log, env) {
        if (process.platform !== 'linux' || !commandExists('apt-get', env))
          throw new Error('no apt-get on this machine');
        let prefix: string[] = [];
        if (process.getuid?.() !== 0) {
          if (!commandExists('sudo', env) || spawnSync('sudo', ['-n', 'true'], { env }).status !== 0)
            throw new Error(
              'not root and no passwordless sudo (run `sudo apt-get install chromium` yourself)',
            );
          prefix = ['sudo', '-n'];
        }
        const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
        const apt = (args: string[]) =>
          prefix.length
            ? run(prefix[0]!, [...prefix.slice(1), 'apt-get', ...args], log, aptEnv)
            : run('apt-get', args, log, aptEnv);
        apt(['update', '-qq']);
        // Debian names it chromium; Ubuntu's older releases chromium-browser.
        try {
          apt(['install', '-y', '-qq', 'chromium']);
        } catch (err) {
          log(`codeclm:   chromium: ${firstLine(err)}; trying chromium-browser`);
          apt(['install', '-y', '-qq', 'chromium-browser']);
        }
        const binary = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
        if (!binary)
          throw new Error('apt-get finished but neither /usr/bin/chromium nor chromium-browser exists');
        return binary;
      },
    },
    {
      name: 'npx @puppeteer/browsers install chrome-headless-shell@stable (download from Chrome for Testing)',
      async install(log, env) {
        const dir = browserCacheDir(env);
        fs.mkdirSync(dir, { recursive: true });
        log(
          'codeclm:   (this needs internet access to googlechromelabs.github.io and storage.googleapis.com)',
        );
        const out = run(
          'npx',
          ['--yes', '@puppeteer/browsers@2', 'install', 'chrome-headless-shell@stable', '--path', dir],
          log,
          env,
        );
        // It prints "<browser>@<build> <path to the binary>" for what it installed.
        const line = out.trim().split('\n').pop() ?? '';
        const binary = line.slice(line.indexOf(' ') + 1).trim();
        if (!binary || !fs.existsSync(binary))
          throw new Error(`no browser binary in its output: ${line.slice(0, 200)}`);
        return binary;
      },
    },
  ];
}
