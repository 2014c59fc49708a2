/**
 * The gateway's claim on its data directory: private, and written by this process only.
 *
 * Private: it holds bare boards' HMAC secrets and password hashes
 * (registry.sqlite), the gateway's signing key, the admin token, the TLS key and patients'
 * frames (ledger/). Directories are 0700 and files 0600, whoever created them.
 *
 * New files: the process umask gains 077, so every file the gateway creates later
 * (segments, index files, SQLite's -wal and -shm, key files) is born private, whatever
 * mode the code that creates it asks for. Existing files: one walk at start tightens any
 * that are readable by group or others, and says which.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { acquireDirLock, describeHolder, DirLockBusy, type DirLock } from '../ledger/dir-lock.ts'
import type { Logger } from './log.ts'

const OPEN_BITS = 0o077

/** Adds 077 to the process umask (main thread only; a worker keeps its parent's). */
export function privateUmask(): void {
  try {
    const old = process.umask(0o077)
    process.umask(old | OPEN_BITS)
  } catch {
    // process.umask(mask) throws in worker threads
  }
}

/**
 * Creates `dir` (0700) if missing, sets the private umask, and tightens every directory
 * and file under it that group or others can reach; returns the paths changed (relative).
 * Symlinks are left alone (what they point to is not ours to change).
 */
export function makePrivate(dir: string): string[] {
  privateUmask()
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const changed: string[] = []
  const visit = (path: string, rel: string): void => {
    const st = lstatSync(path)
    if (st.isSymbolicLink()) return
    const isDir = st.isDirectory()
    if (st.mode & OPEN_BITS) {
      chmodSync(path, isDir ? 0o700 : 0o600)
      changed.push(rel === '' ? '.' : rel)
    }
    if (isDir) for (const name of readdirSync(path)) visit(join(path, name), rel === '' ? name : join(rel, name))
  }
  visit(dir, '')
  return changed
}

/** A second gateway (or `ledger serve`) on a data directory a live process writes to. */
export class DataDirBusy extends Error {
  override name = 'DataDirBusy'
}

/**
 * Makes `dir` private (logging what it had to tighten) and takes its writer lock.
 * Throws DataDirBusy naming the live holder; read-only commands never call this.
 */
export function claimDataDir(dir: string, log: Logger): DirLock {
  const changed = makePrivate(dir)
  if (changed.length) log.log('warn', 'data directory was readable by group or others: made private (directories 0700, files 0600)', { dir, changed })
  try {
    return acquireDirLock(dir, { log: (msg) => log.log('warn', msg, { dir }) })
  } catch (e) {
    if (!(e instanceof DirLockBusy)) throw e
    throw new DataDirBusy(`data directory ${dir} is in use by ${describeHolder(e.holder)}; stop it or use the admin API`)
  }
}
