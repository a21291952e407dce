import fs from 'node:fs';
import path from 'node:path';
import type { Store } from './store';

const tmpName = (file: string) => `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;

/** The local-directory store: today's out dir, each write atomic (temp file + rename). */
export class LocalStore implements Store {
  constructor(readonly location: string) {}

  where(key: string): string {
    return key ? path.join(this.location, key) : this.location;
  }

  async read(key: string): Promise<string | undefined> {
    try {
      return await fs.promises.readFile(this.where(key), 'utf8');
    } catch (err) {
      if (['ENOENT', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
  }

  async readJson<T>(key: string): Promise<T | undefined> {
    const text = await this.read(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async write(key: string, content: string): Promise<void> {
    const file = this.where(key);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tmp = tmpName(file);
    await fs.promises.writeFile(tmp, content);
    await fs.promises.rename(tmp, file);
  }

  writeJson(key: string, value: unknown): Promise<void> {
    return this.write(key, `${JSON.stringify(value, null, 2)}\n`);
  }

  async createIfAbsent(key: string, content: string): Promise<boolean> {
    const file = this.where(key);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    // The whole content goes to a temp file first, then a hard link gives it the key's name, which
    // fails if the name exists: exclusive and whole at once. Opening the key itself with O_EXCL and
    // writing into it showed concurrent readers (a claim's loser reading the owner) an empty or
    // partial file, and a worker killed mid-write left one there for good.
    const tmp = tmpName(file);
    await fs.promises.writeFile(tmp, content);
    try {
      await fs.promises.link(tmp, file);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') return false;
      // A filesystem without hard links (some network and FUSE mounts): exclusive open, as before.
      if (NO_LINKS.has(code)) return createExclusive(file, content);
      throw err;
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  async exists(key: string): Promise<boolean> {
    return fs.existsSync(this.where(key));
  }

  async stat(key: string): Promise<{ modifiedMs: number; tag: string } | undefined> {
    try {
      const st = await fs.promises.stat(this.where(key));
      return { modifiedMs: st.mtimeMs, tag: `${st.mtimeMs}:${st.size}` };
    } catch {
      return undefined;
    }
  }

  async remove(key: string): Promise<void> {
    await fs.promises.rm(this.where(key), { force: true });
  }

  async removeAll(dir: string): Promise<void> {
    await fs.promises.rm(this.where(dir), { recursive: true, force: true });
  }

  async list(dir: string): Promise<string[]> {
    const root = this.where(dir);
    if (!fs.existsSync(root)) return [];
    const out: string[] = [];
    for (const entry of await fs.promises.readdir(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || entry.name.endsWith('.tmp')) continue;
      // parentPath from Node 20.12 (and 18.20); `path` before it.
      const parent = entry.parentPath ?? (entry as unknown as { path: string }).path;
      const rel = path.relative(this.location, path.join(parent, entry.name));
      out.push(rel.split(path.sep).join('/'));
    }
    return out.sort();
  }

  async listDirs(dir: string): Promise<string[]> {
    try {
      const entries = await fs.promises.readdir(this.where(dir), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async *lines(key: string): AsyncGenerator<string> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(this.where(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      yield* splitLines(handle.createReadStream({ encoding: 'utf8', autoClose: false }));
    } finally {
      await handle.close();
    }
  }

  async writeStream(key: string, chunks: AsyncIterable<string>): Promise<void> {
    const file = this.where(key);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tmp = tmpName(file);
    const handle = await fs.promises.open(tmp, 'w');
    try {
      for await (const chunk of chunks) await handle.write(chunk);
    } catch (err) {
      await handle.close();
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    await fs.promises.rename(tmp, file);
  }
}

const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

async function createExclusive(file: string, content: string): Promise<boolean> {
  try {
    await fs.promises.writeFile(file, content, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Lines of a stream of text chunks (the last line may lack its newline). */
export async function* splitLines(chunks: AsyncIterable<string | Buffer>): AsyncGenerator<string> {
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const parts = (rest + text).split('\n');
    rest = parts.pop()!;
    yield* parts;
  }
  rest += decoder.decode();
  if (rest) yield rest;
}
