import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Leases on the embedded dev server (and the offline simulator beside it). The command that started
 * them (a foreground `run`, or a detached run's background copy lingering for `status`/`export`)
 * stops them when it is done; any other codeclm command using them meanwhile holds a lease, a file
 * named after its pid, and the owner stops nothing while a live lease exists.
 *
 * The race between "a command is attaching" and "the owner is stopping" is closed by each side
 * writing its own file first and reading the other's second: the attacher writes its lease, then
 * looks for the owner's `stopping` mark; the owner writes the mark, then looks for leases. At least
 * one of them sees the other: the owner backs off, or the attacher waits until the server is gone
 * and starts its own.
 *
 * Keyed by port, not CODECLM_HOME: `codeclm status` from another directory talks to the same server.
 */
export function leaseDir(port: number): string {
  const user = process.getuid?.() ?? os.userInfo().username;
  return path.join(os.tmpdir(), `codeclm-${user}`, `embedded-${port}`);
}

const STOPPING = 'stopping';

interface LeaseFile {
  pid: number;
  command: string;
}

export interface Lease {
  /** Idempotent; also done at process exit. */
  release(): void;
}

/** One lease per process and port, held until exit: a process's commands share it. */
const held = new Map<number, Lease>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readJson(file: string): LeaseFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LeaseFile;
  } catch {
    return undefined; // removed meanwhile, or half written: the next look sees it whole
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The pid holding the stopping mark, if it is alive. */
function stoppingBy(dir: string): number | undefined {
  const mark = readJson(path.join(dir, STOPPING));
  return mark && mark.pid !== process.pid && alive(mark.pid) ? mark.pid : undefined;
}

/** Other processes' live leases; files left by dead processes are removed. */
export function liveLeases(port: number): LeaseFile[] {
  const dir = leaseDir(port);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith('lease-'));
  } catch {
    return [];
  }
  const live: LeaseFile[] = [];
  for (const name of names) {
    const lease = readJson(path.join(dir, name));
    if (!lease) continue;
    if (lease.pid === process.pid) continue;
    if (alive(lease.pid)) live.push(lease);
    else fs.rmSync(path.join(dir, name), { force: true });
  }
  return live;
}

/**
 * When a command last took or released a lease (the directory's mtime), so that a lingering owner
 * counts its linger from the last command that used the server, not from when its own run ended.
 */
export function lastLeaseActivity(port: number): number {
  try {
    return fs.statSync(leaseDir(port)).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Takes (or reuses this process's) lease on the embedded server at `port`, then, if its owner is stopping it right now,
 * waits (up to `waitMs`) until that is over, so the caller then finds either a server that stays
 * up for it or none at all (and starts its own).
 */
export async function takeLease(
  port: number,
  opts: { waitMs?: number; say?: (line: string) => void } = {},
): Promise<Lease> {
  const dir = leaseDir(port);
  let lease = held.get(port);
  if (!lease) {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `lease-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    const content: LeaseFile = { pid: process.pid, command: process.argv.slice(2, 4).join(' ') };
    fs.writeFileSync(file, JSON.stringify(content));
    const release = () => {
      process.removeListener('exit', release);
      held.delete(port);
      fs.rmSync(file, { force: true });
    };
    process.on('exit', release);
    lease = { release };
    held.set(port, lease);
  }
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  let said = false;
  while (stoppingBy(dir) !== undefined && Date.now() < deadline) {
    if (!said)
      opts.say?.(
        `codeclm: the embedded Temporal server on port ${port} is being stopped by the command ` +
          `that started it (pid ${stoppingBy(dir)}); waiting to start a new one`,
      );
    said = true;
    await sleep(200);
  }
  return lease;
}

/**
 * The owner's side: returns once no other command holds a lease, with the stopping mark set so
 * that commands arriving from now on wait; call `done()` once the server has stopped.
 */
export async function quiesce(
  port: number,
  opts: { pollMs?: number; say?: (line: string) => void } = {},
): Promise<{ done(): void }> {
  const dir = leaseDir(port);
  fs.mkdirSync(dir, { recursive: true });
  const mark = path.join(dir, STOPPING);
  const done = () => {
    process.removeListener('exit', done);
    if (readJson(mark)?.pid === process.pid) fs.rmSync(mark, { force: true });
  };
  let said = '';
  for (;;) {
    const waiting = liveLeases(port);
    if (waiting.length === 0) {
      fs.writeFileSync(mark, JSON.stringify({ pid: process.pid, command: 'stopping' }));
      process.on('exit', done);
      if (liveLeases(port).length === 0) return { done };
      done(); // a command attached between the two looks: let it finish first
      continue;
    }
    const line =
      `codeclm: ${waiting.length} other codeclm command(s) use the embedded Temporal server on port ` +
      `${port} (${waiting.map((l) => `pid ${l.pid}: codeclm ${l.command}`).join(', ')}); ` +
      'it stays up until they finish';
    if (line !== said) opts.say?.(line);
    said = line;
    await sleep(opts.pollMs ?? 500);
  }
}
