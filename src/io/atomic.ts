// The library's one atomic file writer (safetensors checkpoints and ONNX exports both use it).
//
// The bytes go to `<path>.tmp-<pid>-<random>` in the same folder, which is fsynced and then
// renamed over `<path>`; the folder is fsynced after the rename. A crash at any point leaves
// either the old file or the new one at `<path>`, never a partial one. The next write to `<path>`
// removes the temporaries a killed writer left (`<name>.tmp-<pid>-<hex>` whose pid is not a live
// process, or is this process but not one of its writes in progress), and a process that exits
// during a write (process.exit, a second Ctrl-C) removes its own temporary on the way out.
//
// Symlinks: when `<path>` is a symbolic link, the write goes through it: the link is resolved and
// the target is replaced atomically (the temporary lives in the target's folder, so the rename
// stays on one file system); the link itself is kept. A link to a directory, a dangling link, or
// a path that is a directory or another non-regular file is refused with ERR_CHECKPOINT before
// anything is written.
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkpointError } from './errors.js';

export interface AtomicWriteOptions {
  /** What is being written, for messages: 'the safetensors file'. */
  what: string;
  /** What the user should name the path after, for messages: 'checkpoint' ("give a file name for the checkpoint"). */
  noun: string;
  /**
   * Testing aid: the write fails (as a full disk or a crash would) after this many bytes have
   * gone to the temporary file. The file at `path` is left untouched.
   */
  failAfterBytes?: number;
}

/** Largest single write (fs writes of more than 2 GiB fail on some platforms). */
const CHUNK = 64 * 1024 * 1024;

async function writeAll(fh: FileHandle, buf: Uint8Array, position: number, budget: { left: number }, tmp: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    let n = Math.min(CHUNK, buf.length - done);
    if (n > budget.left) {
      n = budget.left;
      if (n === 0) throw new Error(`injected write failure at byte ${position + done} of ${tmp}`);
    }
    const { bytesWritten } = await fh.write(buf, done, n, position + done);
    done += bytesWritten;
    budget.left -= bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch (e) {
    // Some platforms (Windows) and file systems cannot fsync a directory; the rename is done.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES' && code !== 'ENOTSUP') throw e;
  } finally {
    await dh?.close();
  }
}

// The temporaries of this process's writes in progress: removed synchronously if the process
// exits mid-write (a second Ctrl-C calls process.exit), so no partial file is left behind.
const inFlight = new Set<string>();
let exitHookInstalled = false;
function removeInFlightTemporaries(): void {
  for (const tmp of inFlight) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone (renamed or removed): nothing to do while exiting
    }
  }
  inFlight.clear();
}
function trackTemporary(tmp: string): void {
  if (!exitHookInstalled) {
    process.on('exit', removeInFlightTemporaries);
    exitHookInstalled = true;
  }
  inFlight.add(tmp);
}

const escapeRegExp = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else; only ESRCH means it is gone.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temporaries that earlier writes of `<dir>/<name>` left behind when they were
 * killed: `<name>.tmp-<pid>-<12 hex>` regular files whose pid is not a running process (or is
 * this process, but not one of its writes in progress). Returns the paths removed. Best effort:
 * a file that cannot be removed is left (the write itself does not depend on it).
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const full = resolve(path);
  const dir = dirname(full);
  const pattern = new RegExp(`^${escapeRegExp(basename(full))}\\.tmp-(\\d+)-[0-9a-f]{12}$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const p = join(dir, name);
    if (pid === process.pid ? inFlight.has(p) : pidIsAlive(pid)) continue;
    try {
      if (!(await lstat(p)).isFile()) continue; // only our own kind of file
      await unlink(p);
      removed.push(p);
    } catch {
      // raced with another cleaner, or not ours to remove: leave it
    }
  }
  return removed;
}

/**
 * Where a write of `path` must go: `path` itself, or the target of the symlink it is. Refuses a
 * directory, a dangling link, a link to a directory, and any other non-regular file, before
 * anything is written.
 */
async function writeTarget(path: string, noun: string): Promise<string> {
  const full = resolve(path);
  let l;
  try {
    l = await lstat(full);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return full; // a new file
    throw e;
  }
  if (l.isFile()) return full;
  if (l.isDirectory()) throw checkpointError(`${path}: is a directory; give a file name for the ${noun}`);
  if (!l.isSymbolicLink()) throw checkpointError(`${path}: is not a regular file (a FIFO, socket or device); refusing to replace it`);
  let target: string;
  try {
    target = await realpath(full);
  } catch (e) {
    throw checkpointError(`${path}: is a symbolic link that cannot be resolved (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: dangling or a loop); refusing to write through it`, e);
  }
  const t = await stat(target);
  if (t.isDirectory()) throw checkpointError(`${path}: is a symbolic link to the directory ${target}; give a file name for the ${noun}`);
  if (!t.isFile()) throw checkpointError(`${path}: is a symbolic link to ${target}, which is not a regular file; refusing to replace it`);
  return target;
}

/**
 * Creates the folder `dir` and those above it that are missing, one level at a time. Node's
 * mkdir({ recursive: true }) never returns when a file system answers ENOENT for a new child of
 * a folder that exists (procfs: mkdir('/proc/x/y', { recursive: true }) spins forever, blocking a
 * thread of libuv's pool and the process with it); here that ENOENT is final. Every failure is
 * `fail(message)`, by default an ERR_CHECKPOINT error.
 */
export async function ensureDir(dir: string, fail: (message: string, cause?: unknown) => Error = checkpointError): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(dir); ; ) {
    let s;
    try {
      s = await stat(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const parent = dirname(p);
      if (code !== 'ENOENT' || parent === p) throw fail(`cannot use the folder '${p}' (${code ?? (e as Error).message})`, e);
      missing.push(p);
      p = parent;
      continue;
    }
    if (!s.isDirectory()) throw fail(`'${p}' is not a folder`);
    break;
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await stat(p).catch(() => undefined))?.isDirectory()) continue; // made by someone else meanwhile
      throw fail(`cannot create the folder '${p}' (${code ?? (e as Error).message})`, e);
    }
  }
}

/** writeTarget(path, noun), its refusals as ERR_CHECKPOINT errors naming `path`. */
async function checkedTarget(path: string, noun: AtomicWriteOptions['noun']): Promise<string> {
  try {
    return await writeTarget(path, noun);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_CHECKPOINT') throw e;
    throw checkpointError(`${path}: cannot write here (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
}

/**
 * Checks, before a long run, that writeFileAtomic(path) can work: the path is not a directory or
 * a special file, its folder exists or is created (ensureDir), and a temporary file can be made
 * there and removed. Refusals are ERR_CHECKPOINT errors naming `path`; nothing is left behind.
 */
export async function checkWritable(path: string, options: Pick<AtomicWriteOptions, 'what' | 'noun'>): Promise<void> {
  const full = await checkedTarget(path, options.noun);
  const dir = dirname(full);
  await ensureDir(dir, (message, cause) => checkpointError(`${path}: cannot write ${options.what} here: ${message}`, cause));
  const tmp = join(dir, `${basename(full)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  trackTemporary(tmp);
  try {
    await (await open(tmp, 'wx', 0o644)).close();
    await unlink(tmp);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw checkpointError(`${path}: cannot write ${options.what} here (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  } finally {
    inFlight.delete(tmp);
  }
}

/**
 * Writes `chunks`, in order, as the file at `path`, atomically and durably (see the file
 * comment). Every failure is an ERR_CHECKPOINT error (src/io/errors.ts: the file-format code's
 * errors) naming `path`; before the rename, the message says the file at `path` is unchanged.
 */
export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[], options: AtomicWriteOptions): Promise<void> {
  const full = await checkedTarget(path, options.noun);
  const dir = dirname(full);
  await removeStaleTemporaries(full);
  const tmp = join(dir, `${basename(full)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined;
  let renamed = false;
  trackTemporary(tmp);
  try {
    fh = await open(tmp, 'wx', 0o644);
    const budget = { left: options.failAfterBytes ?? Number.POSITIVE_INFINITY };
    let position = 0;
    for (const bytes of chunks) {
      await writeAll(fh, bytes, position, budget, tmp);
      position += bytes.length;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, full);
    renamed = true;
    inFlight.delete(tmp);
    await fsyncDir(dir);
  } catch (e) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    if (!renamed) await unlink(tmp).catch(() => undefined);
    inFlight.delete(tmp);
    const why = e instanceof Error ? e.message : String(e);
    throw checkpointError(`${path}: writing ${options.what} failed${renamed ? ' after the rename' : `; '${path}' is unchanged`}: ${why}`, e);
  }
}
