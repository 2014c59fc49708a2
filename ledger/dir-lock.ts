/**
 * One writer per directory: `DIR/lock` holds {pid, since, command} of the process that
 * writes there (a gateway on its data directory, `ledger serve` on a ledger). Two
 * writers appending to the same segments and index corrupt the ledger, so a second one is
 * refused, naming the first. Readers (verify, proof, head) never take it.
 *
 * The file appears whole or not at all (written to a temp name, then hard-linked into
 * place, which fails if it exists). A lock whose process is gone (kill(pid, 0) says
 * ESRCH: a SIGKILL, a power cut) is stale and taken over, with a log line. A lock naming
 * this very process is taken over silently: after a restart in a container the new
 * process often gets the old PID, and one process may reopen what it closed uncleanly.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export const LOCK_FILE = 'lock'

export interface LockHolder {
  pid: number
  /** ISO time the holder took the lock. */
  since: string
  /** What the holder runs, e.g. "mhealth gateway --data /var/lib/mhealth". */
  command: string
}

/** The directory is held by another live process. */
export class DirLockBusy extends Error {
  override name = 'DirLockBusy'
  constructor(readonly dir: string, readonly holder: LockHolder) {
    super(`${dir} is in use by ${describeHolder(holder)}`)
  }
}

/** "a running gateway (pid 812, since 2026-...)", or the holder's command when it is not a gateway. */
export function describeHolder(h: LockHolder): string {
  const what = /^mhealth gateway\b/.test(h.command) ? 'gateway' : `'${h.command}'`
  return `a running ${what} (pid ${h.pid}, since ${h.since})`
}

export interface DirLock {
  path: string
  holder: LockHolder
  /** Removes the lock if it is still ours; idempotent. */
  release(): void
}

/** The command line of this process, as a holder would want to see it. */
export function thisCommand(): string {
  return ['mhealth', ...process.argv.slice(2)].join(' ')
}

function readHolder(path: string): LockHolder | undefined {
  let j
  try {
    j = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    j = undefined
  }
  if (!j || !Number.isSafeInteger(j.pid) || j.pid <= 0) return { pid: 0, since: 'unknown', command: 'unreadable lock file' }
  return { pid: j.pid, since: String(j.since), command: String(j.command) }
}

/** kill(pid, 0): EPERM means alive but someone else's; only ESRCH means gone. */
export function pidAlive(pid: number): boolean {
  if (pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

const held = new Set<string>()
let exitHook = false

/** Takes `dir/lock` (dir must exist). Throws DirLockBusy if a live process holds it. */
export function acquireDirLock(dir: string, opts: { command?: string; log?: (msg: string) => void } = {}): DirLock {
  const path = join(dir, LOCK_FILE)
  const holder: LockHolder = { pid: process.pid, since: new Date().toISOString(), command: opts.command ?? thisCommand() }
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, JSON.stringify(holder) + '\n')
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    // Two takers of a stale lock race only on the unlink/link pair; a few rounds settle it.
    for (let round = 0; ; round++) {
      try {
        linkSync(tmp, path)
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || round >= 3) throw e
      }
      const old = readHolder(path)
      if (!old) continue
      if (old.pid !== process.pid) {
        if (pidAlive(old.pid)) throw new DirLockBusy(dir, old)
        opts.log?.(`taking over the stale lock ${path} of pid ${old.pid} (${old.command}, since ${old.since}): that process is gone`)
      }
      try {
        unlinkSync(path)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      }
    }
  } finally {
    try {
      unlinkSync(tmp)
    } catch {
      // already gone
    }
  }
  held.add(path)
  if (!exitHook) {
    exitHook = true
    // A clean exit without close() (an uncaught error, process.exit) still frees the directory.
    process.on('exit', () => {
      for (const p of held) releasePath(p)
    })
  }
  return { path, holder, release: () => releasePath(path) }
}

function releasePath(path: string): void {
  if (!held.delete(path)) return
  if (readHolder(path)?.pid !== process.pid) return // taken over meanwhile: not ours to remove
  try {
    unlinkSync(path)
  } catch {
    // already gone
  }
}
