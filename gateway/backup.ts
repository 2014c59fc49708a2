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
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { listSegments, parseSegment, segName } from '../ledger/store.ts'
import { RecordType } from '../ledger/records.ts'
import { HIGH_WATER_FILE } from '../ledger/high-water.ts'
import { verifyLedger, type VerifyReport } from '../ledger/verify.ts'
import { ArchiveError, readTarGz, writeTarGz, type TarEntry } from './tar-gz.ts'

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

/** The ledger files up to and including the last whole block record (see the file comment). */
async function ledgerCut(dir: string): Promise<{ files: TarEntry[] }> {
  const files: TarEntry[] = []
  // The mark first: it never names a block that is not durable, so the segments read after it reach it.
  const mark = existsSync(join(dir, HIGH_WATER_FILE)) ? readFileSync(join(dir, HIGH_WATER_FILE)) : undefined
  const meta = readFileSync(join(dir, 'ledger.json'))
  const segs = await listSegments(dir)
  const datas: Buffer[] = []
  let last: { i: number; end: number } | undefined
  for (let i = 0; i < segs.length; i++) {
    const data = readFileSync(join(dir, segName(segs[i])))
    datas.push(data)
    for (const r of parseSegment(segs[i], data).records) if (r.body[0] === RecordType.Block) last = { i, end: r.offset + 8 + r.body.length }
  }
  files.push({ name: 'ledger/ledger.json', data: meta })
  if (mark) files.push({ name: `ledger/${HIGH_WATER_FILE}`, data: mark })
  if (last) for (let i = 0; i <= last.i; i++) files.push({ name: `ledger/${segName(segs[i])}`, data: i === last.i ? datas[i].subarray(0, last.end) : datas[i] })
  return { files }
}

/** Writes the entries into `dir` (files 0600, directories 0700). */
function unpack(dir: string, entries: TarEntry[]): void {
  for (const e of entries) {
    const path = join(dir, e.name)
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    writePrivate(path, e.data)
  }
  for (const d of new Set(entries.map((e) => dirname(join(dir, e.name))))) {
    const fd = openSync(d, 'r')
    fsyncSync(fd)
    closeSync(fd)
  }
}

/**
 * Makes the backup archive of the gateway data directory `dataDir` (a config file may be
 * added as config.json). Returns the archive bytes, its manifest and the verify report of
 * the ledger it holds. Read-only on `dataDir`: safe beside a running gateway.
 */
export async function makeBackup(dataDir: string, opts: { configFile?: string } = {}): Promise<{ archive: Buffer; manifest: BackupManifest; verify: VerifyReport }> {
  if (!existsSync(join(dataDir, 'gateway.key'))) throw new BackupError(`${dataDir} is not a gateway data directory (no gateway.key)`)
  if (!existsSync(join(dataDir, 'ledger', 'ledger.json'))) throw new BackupError(`${dataDir} has no ledger (no ledger/ledger.json)`)
  const entries: TarEntry[] = []
  const add = (name: string, path: string): void => {
    if (existsSync(path)) entries.push({ name, data: readFileSync(path) })
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
      entries.push({ name: 'registry.sqlite', data: readFileSync(join(work, 'registry.sqlite')) })
    }
    const { files } = await ledgerCut(join(dataDir, 'ledger'))
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
      files: Object.fromEntries(entries.map((e) => [e.name, { size: e.data.length, sha256: sha(e.data) }])),
    }
    const archive = writeTarGz([{ name: MANIFEST, data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n') }, ...entries])
    return { archive, manifest, verify }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Writes `data` to `path` privately and durably (temp file, fsync, rename). */
export function writeFileDurablePrivate(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`
  writePrivate(tmp, data)
  renameSync(tmp, path)
}

/** Checks an archive whole; returns its manifest and files, or throws BackupError saying what is wrong. */
export function openBackup(archive: Buffer, what: string): { manifest: BackupManifest; entries: TarEntry[] } {
  let entries: TarEntry[]
  try {
    entries = readTarGz(archive)
  } catch (e) {
    if (e instanceof ArchiveError) throw new BackupError(`${what} is not a valid backup archive: ${e.message}`)
    throw e
  }
  const m = entries.find((e) => e.name === MANIFEST)
  let manifest: BackupManifest
  try {
    manifest = JSON.parse(m!.data.toString('utf8'))
  } catch {
    throw new BackupError(`${what} is not a valid backup archive: no readable ${MANIFEST}`)
  }
  if (manifest?.kind !== KIND || manifest.v !== 1 || typeof manifest.files !== 'object') throw new BackupError(`${what} is not an mhealth gateway backup (${MANIFEST} kind ${JSON.stringify(manifest?.kind)})`)
  const files = entries.filter((e) => e.name !== MANIFEST)
  for (const e of files) {
    if (!ALLOWED.test(e.name)) throw new BackupError(`${what}: unexpected file ${JSON.stringify(e.name)} in the archive`)
    const want = manifest.files[e.name]
    if (!want) throw new BackupError(`${what}: ${e.name} is not in the manifest`)
    if (want.size !== e.data.length || want.sha256 !== sha(e.data)) throw new BackupError(`${what}: ${e.name} is damaged (SHA-256 does not match the manifest)`)
  }
  for (const name of Object.keys(manifest.files)) if (!files.some((e) => e.name === name)) throw new BackupError(`${what}: ${name} is listed in the manifest but missing`)
  if (!files.some((e) => e.name === 'gateway.key') || !files.some((e) => e.name === 'ledger/ledger.json')) throw new BackupError(`${what}: no gateway.key or ledger in the archive`)
  return { manifest, entries: files }
}

/**
 * Restores a checked archive into `dest` (which must not exist or be empty: the caller
 * moves a non-empty one aside). Unpacks into a staging directory beside it, verifies the
 * ledger there, then renames it into place.
 */
export async function restoreBackup(archive: Buffer, what: string, dest: string): Promise<{ manifest: BackupManifest; verify: VerifyReport; files: number }> {
  const { manifest, entries } = openBackup(archive, what)
  if (existsSync(dest) && readdirSync(dest).length > 0) throw new BackupError(`${dest} is not empty`)
  mkdirSync(dirname(dest), { recursive: true })
  const stage = `${dest}.restoring-${process.pid}`
  rmSync(stage, { recursive: true, force: true })
  mkdirSync(stage, { mode: 0o700 })
  try {
    unpack(stage, entries)
    const verify = await verifyLedger(join(stage, 'ledger'))
    if (!verify.ok) throw new BackupError(`${what}: the ledger in the archive does not verify: ${verify.problem?.message}`)
    if (existsSync(dest)) rmdirSync(dest)
    renameSync(stage, dest)
    const fd = openSync(dirname(dest), 'r')
    fsyncSync(fd)
    closeSync(fd)
    return { manifest, verify, files: entries.length }
  } catch (e) {
    rmSync(stage, { recursive: true, force: true })
    throw e
  }
}
