import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { SimRequestLog, SimStats } from '../src/sim';

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; undefined off Linux. */
let clockTicks: number | undefined;
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/** This process's CPU seconds (all threads: JS, the SDK's Rust core, workflow worker threads). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export interface SimProcess {
  url: string;
  pid: number;
  stats(): Promise<SimStats>;
  /** The simulator's request log (arrival time, status, ms to answer). */
  requests(): Promise<SimRequestLog[]>;
  reset(): Promise<void>;
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

/**
 * The simulator in its own process (`codeclm sim-llm`), so its CPU is measured apart from the
 * worker's and it never competes with the worker's event loop.
 */
export async function startSimProcess(opts: {
  latencyMs: number;
  rpm?: number;
  seed: number;
  /** How long the simulator keeps a batch in progress (its default otherwise). */
  batchDelayMs?: number;
}): Promise<SimProcess> {
  const bin = path.join(__dirname, '..', 'bin', 'codeclm.js');
  const args = [
    bin,
    'sim-llm',
    '--port',
    '0',
    '--json',
    '--seed',
    String(opts.seed),
    '--latency-ms',
    String(opts.latencyMs),
  ];
  if (opts.rpm) args.push('--rpm', String(opts.rpm));
  if (opts.batchDelayMs !== undefined) args.push('--batch-delay-ms', String(opts.batchDelayMs));
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error('simulator did not start within 60 s')), 60_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`simulator exited with code ${code}`)));
  });
  const base = url.replace(/\/v1$/, '');
  return {
    url,
    pid: child.pid!,
    async stats() {
      return (await (await fetch(`${base}/_sim/stats`)).json()) as SimStats;
    },
    async requests() {
      return (await (await fetch(`${base}/_sim/requests`)).json()) as SimRequestLog[];
    },
    async reset() {
      await fetch(`${base}/_sim/reset`, { method: 'POST', body: '{}' });
    },
    cpuSeconds: () => processCpuSeconds(child.pid),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
