/**
 * Backup and restore of a gateway data directory, safe beside a running gateway.
 *
 * A backup is one .tar.gz (tar-gz.ts) holding MANIFEST.json (every file's size and SHA-256,
 * the ledger head it ends at), the gateway's identity (gateway.key, admin.token, tls/), an
 * online SQLite backup of registry.sqlite (a consistent copy while the gateway writes), and
 * the ledger cut at its last whole block: high-water.json is read first (it only ever names
 * durable blocks), then each segment once, and everything after the last complete block
 * record is left out, so a half-written tail is never copied. The index is derived data and
 * is rebuilt by the restored gateway. The snapshot is verified before it is written.
 *
 * Restore checks the archive whole (gzip CRC, tar checksums, manifest hashes, the ledger
 * verifying) in a staging directory beside the target, then renames it into place.
 *
 * Both stream: files are read, hashed, archived and extracted a chunk at a time (one ledger
 * segment is at most 64 MiB; a ledger is tens of GB on a busy ward). The snapshot's
 * verification (ledger/verify.ts, as `ledger verify`) still grows with the ledger.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, rmdirSync, statSync, writeSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { listSegments, parseSegment, segName } from '../ledger/store.ts'
import { RecordType } from '../ledger/records.ts'
import { HIGH_WATER_FILE } from '../ledger/high-water.ts'
import { verifyLedger, type VerifyReport } from '../ledger/verify.ts'
import { ArchiveError, scanTarGzFile, writeTarGzFile, type TarSource } from './tar-gz.ts'

export const MANIFEST = 'MANIFEST.json'
const KIND = 'mhealth-gateway-backup'

export interface BackupManifest {
  v: 1
  kind: typeof KIND
  createdAt: string
  gatewayId?: string
  ledger: { blocks: number; leaves: number; head?: string }
  files: Record<string, { size: number; sha256: string }>
}

export class BackupError extends Error {
  override name = 'BackupError'
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
/** What a backup may hold: anything else in an archive is refused on restore. */
const ALLOWED = /^(gateway\.key|admin\.token|config\.json|registry\.sqlite|tls\/(cert|key)\.pem|ledger\/(ledger\.json|high-water\.json|seg-\d{6}\.log))$/

function writePrivate(path: string, data: Buffer): void {
  const fd = openSync(path, 'w', 0o600)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** SHA-256 of the first `size` bytes of a file, read a chunk at a time. */
function hashFile(path: string, size: number): string {
  const h = createHash('sha256')
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (let at = 0; at < size; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at)
      if (n === 0) throw new BackupError(`${path} ended at byte ${at}, ${size} expected`)
      h.update(buf.subarray(0, n))
      at += n
    }
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

/** Copies the first `size` bytes of `from` to `to` (0600, fsynced), a chunk at a time. */
function copyPrefix(from: string, to: string, size: number): void {
  const src = openSync(from, 'r')
  const dst = openSync(to, 'w', 0o600)
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (let at = 0; at < size; ) {
      const n = readSync(src, buf, 0, Math.min(buf.length, size - at), at)
      if (n === 0) throw new BackupError(`${from} ended at byte ${at}, ${size} expected`)
      writeSync(dst, buf, 0, n)
      at += n
    }
    fsyncSync(dst)
  } finally {
    closeSync(src)
    closeSync(dst)
  }
}

/**
 * The ledger files up to and including the last whole block record (see the file comment),
 * as sources of the archive: segments are append-only, so the prefix found here stays as it
 * is while a running gateway appends. One segment is in memory at a time.
 */
async function ledgerCut(dir: string): Promise<TarSource[]> {
  // The mark first: it never names a block that is not durable, so the segments read after it reach it.
  const mark = existsSync(join(dir, HIGH_WATER_FILE)) ? readFileSync(join(dir, HIGH_WATER_FILE)) : undefined
  const meta = readFileSync(join(dir, 'ledger.json'))
  const segs = await listSegments(dir)
  const sizes: number[] = []
  let last: { i: number; end: number } | undefined
  for (let i = 0; i < segs.length; i++) {
    const data = readFileSync(join(dir, segName(segs[i])))
    sizes.push(data.length)
    for (const r of parseSegment(segs[i], data).records) if (r.body[0] === RecordType.Block) last = { i, end: r.offset + 8 + r.body.length }
  }
  const files: TarSource[] = [{ name: 'ledger/ledger.json', size: meta.length, data: meta }]
  if (mark) files.push({ name: `ledger/${HIGH_WATER_FILE}`, size: mark.length, data: mark })
  if (last) for (let i = 0; i <= last.i; i++) files.push({ name: `ledger/${segName(segs[i])}`, size: i === last.i ? last.end : sizes[i], path: join(dir, segName(segs[i])) })
  return files
}

/** Writes the sources into `dir` (files 0600, directories 0700). */
function unpack(dir: string, entries: TarSource[]): void {
  for (const e of entries) {
    const path = join(dir, e.name)
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    if (e.data) writePrivate(path, e.data)
    else copyPrefix(e.path!, path, e.size)
  }
  for (const d of new Set(entries.map((e) => dirname(join(dir, e.name))))) {
    const fd = openSync(d, 'r')
    fsyncSync(fd)
    closeSync(fd)
  }
}

/**
 * Writes the backup archive of the gateway data directory `dataDir` to `out` (a config file
 * may be added as config.json): a temp file beside it, fsynced, renamed into place. Returns
 * its manifest, size and the verify report of the ledger it holds. Read-only on `dataDir`:
 * safe beside a running gateway.
 */
export async function makeBackup(dataDir: string, out: string, opts: { configFile?: string } = {}): Promise<{ bytes: number; manifest: BackupManifest; verify: VerifyReport }> {
  if (!existsSync(join(dataDir, 'gateway.key'))) throw new BackupError(`${dataDir} is not a gateway data directory (no gateway.key)`)
  if (!existsSync(join(dataDir, 'ledger', 'ledger.json'))) throw new BackupError(`${dataDir} has no ledger (no ledger/ledger.json)`)
  const entries: TarSource[] = []
  const add = (name: string, path: string): void => {
    if (existsSync(path)) {
      const data = readFileSync(path)
      entries.push({ name, size: data.length, data })
    }
  }
  add('gateway.key', join(dataDir, 'gateway.key'))
  add('admin.token', join(dataDir, 'admin.token'))
  add('tls/cert.pem', join(dataDir, 'tls', 'cert.pem'))
  add('tls/key.pem', join(dataDir, 'tls', 'key.pem'))
  if (opts.configFile) {
    if (!existsSync(opts.configFile)) throw new BackupError(`--config ${opts.configFile}: no such file`)
    add('config.json', opts.configFile)
  }
  const work = mkdtempSync(join(tmpdir(), 'mh-backup-'))
  const tmp = `${out}.tmp-${process.pid}`
  try {
    const reg = join(dataDir, 'registry.sqlite')
    if (existsSync(reg)) {
      // SQLite's online backup: a consistent copy while the gateway keeps writing (WAL).
      const db = new Database(reg, { readonly: true, fileMustExist: true })
      try {
        await db.backup(join(work, 'registry.sqlite'))
      } finally {
        db.close()
      }
      entries.push({ name: 'registry.sqlite', size: statSync(join(work, 'registry.sqlite')).size, path: join(work, 'registry.sqlite') })
    }
    const files = await ledgerCut(join(dataDir, 'ledger'))
    entries.push(...files)
    // What is archived is what restore will get: verify it as it will be restored.
    unpack(work, files)
    const verify = await verifyLedger(join(work, 'ledger'))
    if (!verify.ok) throw new BackupError(`the ledger snapshot does not verify: ${verify.problem?.message}`)
    let gatewayId: string | undefined
    try {
      gatewayId = JSON.parse(readFileSync(join(dataDir, 'gateway.key'), 'utf8')).id
    } catch {
      gatewayId = undefined
    }
    const manifest: BackupManifest = {
      v: 1, kind: KIND, createdAt: new Date().toISOString(), gatewayId,
      ledger: { blocks: verify.blocks, leaves: verify.leaves, head: verify.head?.hash },
      files: Object.fromEntries(entries.map((e) => [e.name, { size: e.size, sha256: e.data ? sha(e.data) : hashFile(e.path!, e.size) }])),
    }
    const m = Buffer.from(JSON.stringify(manifest, null, 2) + '\n')
    let bytes: number
    try {
      bytes = await writeTarGzFile(tmp, [{ name: MANIFEST, size: m.length, data: m }, ...entries])
      const fd = openSync(tmp, 'r')
      fsyncSync(fd)
      closeSync(fd)
      renameSync(tmp, out)
    } catch (e) {
      rmSync(tmp, { force: true })
      if (e instanceof BackupError || e instanceof ArchiveError) throw new BackupError(e.message)
      throw new BackupError(`cannot write ${out}: ${(e as Error).message}`)
    }
    return { bytes, manifest, verify }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/**
 * Reads the archive at `path` through, checking it whole (gzip CRC, tar checksums, only
 * known file names, every file's size and SHA-256 against MANIFEST.json, which comes first);
 * with `into`, extracts it there as it goes (files 0600, directories 0700). Returns the
 * manifest and how many files; throws BackupError saying what is wrong.
 */
async function readBackup(path: string, what: string, into?: string): Promise<{ manifest: BackupManifest; files: number }> {
  let manifest: BackupManifest | undefined
  const seen = new Set<string>()
  let problem: string | undefined
  const fail = (msg: string): null => {
    problem ??= msg
    return null
  }
  try {
    await scanTarGzFile(path, (name, size) => {
      if (problem) return null
      if (name === MANIFEST && !manifest && seen.size === 0) {
        const parts: Buffer[] = []
        return {
          write: (c) => void parts.push(Buffer.from(c)),
          end: () => {
            try {
              manifest = JSON.parse(Buffer.concat(parts).toString('utf8'))
            } catch {
              fail(`${what} is not a valid backup archive: no readable ${MANIFEST}`)
            }
            if (manifest && (manifest.kind !== KIND || manifest.v !== 1 || typeof manifest.files !== 'object')) fail(`${what} is not an mhealth gateway backup (${MANIFEST} kind ${JSON.stringify(manifest?.kind)})`)
          },
        }
      }
      if (!manifest) return fail(`${what} is not a valid backup archive: no readable ${MANIFEST} first`)
      if (!ALLOWED.test(name)) return fail(`${what}: unexpected file ${JSON.stringify(name)} in the archive`)
      const want = manifest.files[name]
      if (!want) return fail(`${what}: ${name} is not in the manifest`)
      if (seen.has(name)) return fail(`${what}: ${name} appears twice`)
      seen.add(name)
      if (want.size !== size) return fail(`${what}: ${name} is damaged (size ${size}, the manifest says ${want.size})`)
      const h = createHash('sha256')
      let fd = -1
      if (into) {
        const dest = join(into, name)
        mkdirSync(dirname(dest), { recursive: true, mode: 0o700 })
        fd = openSync(dest, 'w', 0o600)
      }
      return {
        write: (c) => {
          h.update(c)
          if (fd >= 0) writeSync(fd, c)
        },
        end: () => {
          if (fd >= 0) {
            fsyncSync(fd)
            closeSync(fd)
          }
          if (h.digest('hex') !== want.sha256) fail(`${what}: ${name} is damaged (SHA-256 does not match the manifest)`)
        },
      }
    })
  } catch (e) {
    if (e instanceof ArchiveError) throw new BackupError(`${what} is not a valid backup archive: ${e.message}`)
    throw new BackupError(`cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  if (problem) throw new BackupError(problem)
  if (!manifest) throw new BackupError(`${what} is not a valid backup archive: no readable ${MANIFEST}`)
  const m = manifest as BackupManifest
  for (const name of Object.keys(m.files)) if (!seen.has(name)) throw new BackupError(`${what}: ${name} is listed in the manifest but missing`)
  if (!seen.has('gateway.key') || !seen.has('ledger/ledger.json')) throw new BackupError(`${what}: no gateway.key or ledger in the archive`)
  if (into) {
    for (const d of new Set([...seen].map((n) => dirname(join(into, n))))) {
      const fd = openSync(d, 'r')
      fsyncSync(fd)
      closeSync(fd)
    }
  }
  return { manifest: m, files: seen.size }
}

/** Checks the archive at `path` whole without writing anything; returns its manifest. */
export async function openBackup(path: string, what: string): Promise<BackupManifest> {
  return (await readBackup(path, what)).manifest
}

/**
 * Restores the archive at `path` into `dest` (which must not exist or be empty: the caller
 * moves a non-empty one aside). Extracts into a staging directory beside it, checking as it
 * goes, verifies the ledger there, then renames it into place.
 */
export async function restoreBackup(path: string, what: string, dest: string): Promise<{ manifest: BackupManifest; verify: VerifyReport; files: number }> {
  if (existsSync(dest) && readdirSync(dest).length > 0) throw new BackupError(`${dest} is not empty`)
  mkdirSync(dirname(dest), { recursive: true })
  const stage = `${dest}.restoring-${process.pid}`
  rmSync(stage, { recursive: true, force: true })
  mkdirSync(stage, { mode: 0o700 })
  try {
    const { manifest, files } = await readBackup(path, what, stage)
    const verify = await verifyLedger(join(stage, 'ledger'))
    if (!verify.ok) throw new BackupError(`${what}: the ledger in the archive does not verify: ${verify.problem?.message}`)
    if (existsSync(dest)) rmdirSync(dest)
    renameSync(stage, dest)
    const fd = openSync(dirname(dest), 'r')
    fsyncSync(fd)
    closeSync(fd)
    return { manifest, verify, files }
  } catch (e) {
    rmSync(stage, { recursive: true, force: true })
    throw e
  }
}
