import { provisionBrowser } from './provision';

/**
 * `npx tsx src/browser/main.ts`: finds or installs a headless browser and prints its path (used by
 * .ci/run). `--no-install` only looks. Exit code 1 with the routes tried when there is none.
 */
provisionBrowser({ allowInstall: !process.argv.includes('--no-install') }).then(
  (binary) => process.stdout.write(`${binary}\n`),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
