/**
 * The ledger's on-disk indexes, in `DIR/index/`. They are derived data: everything here
 * can be rebuilt from the segment files, and is, whenever it cannot be trusted.
 *
 * Files (fixed-size records, see flat-file.ts):
 * - `L00.bin` leaf hashes (32 B/leaf); `L04.bin`, `L05.bin`, ... complete aligned subtree
 *   roots at heights 4 and up (n/8 hashes in all): proofs read O(log n) of them.
 * - `loc.bin` one 40-byte locator per leaf: kind, segment, offset, t, seq, device number.
 * - `blocks.bin` one 32-byte record per block: segment and offset of its block record,
 *   firstLeaf, and where its own subtree roots start in `bnodes.bin` (for in-block paths).
 * - `index.db` (SQLite, better-sqlite3): (device, seq) -> leaf, (device, leaf) for
 *   per-device listing, 6-byte leaf-hash prefix -> leaf (collisions resolved against
 *   L00), consent records (replayed into the consent state on open), witness
 *   co-signatures, per-segment leaf ranges for retention, and the checkpoint.
 *
 * The checkpoint (leaves, blocks, the last indexed block's record locator and hash) is
 * committed in the same SQLite transaction as the rows, after the flat files were
 * written and fdatasynced; it always sits at a block boundary whose block record is
 * durable. On open, files are cut back to the checkpoint and the segments are scanned
 * from the record after that block; if anything disagrees (a file too short, the block
 * record or log root not matching, an unreadable database) the whole index is rebuilt.
 */
import Database from 'better-sqlite3'
import { mkdirSync, rmSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { FlatFile } from './flat-file.ts'
import type { HashFile, LevelStore } from './tree-index.ts'

export const LOC_BYTES = 40
export const BLOCK_BYTES = 32
export const INDEX_FORMAT = 1

export interface Checkpoint {
  v: 1
  leaves: number
  blocks: number
  bnodes: number
  /** Locator of the last indexed block's record (scanning resumes after it). */
  seg: number
  off: number
  /** Hex block hash of that block. */
  head: string
}

export interface SegStat {
  first: number
  end: number
  /** Earliest t0 among frames in the segment that still have payloads (Infinity if none). */
  tmin: number
}

export interface IndexRows {
  devices: { id: number; name: string; maxSeq: number }[]
  frames: [dev: number, seq: number, leaf: number][]
  hashes: [h6: number, leaf: number][]
  consents: [leaf: number, record: Uint8Array][]
  witnesses: [height: number, pub: Uint8Array, sig: Uint8Array][]
  segs: [seg: number, s: SegStat][]
}

class FileLevels implements LevelStore {
  readonly files: FlatFile[] = []
  constructor(private readonly dir: string | null, private readonly readOnly: boolean) {}
  level(height: number): HashFile {
    let f = this.files[height]
    if (!f) {
      const path = this.dir === null ? null : join(this.dir, `L${String(height).padStart(2, '0')}.bin`)
      // A reader that grows the tree past the writer's last height keeps that level in memory.
      f = this.files[height] = new FlatFile(path !== null && this.readOnly && !existsSync(path) ? null : path, 32, height === 0 ? 512 : 64, this.readOnly)
    }
    return f
  }
  /** Heights that hold entries for n leaves. */
  static heights(n: number): number[] {
    const hs = [0]
    for (let h = 4; 2 ** h <= n; h++) hs.push(h)
    return hs
  }
}

export class IndexStore {
  readonly levels: FileLevels
  readonly loc: FlatFile
  readonly blocks: FlatFile
  readonly bnodes: FlatFile
  private db: Database.Database | undefined
  private st: Record<string, Database.Statement> = {}

  private constructor(readonly dir: string | null, readonly readOnly: boolean) {
    this.levels = new FileLevels(dir, readOnly)
    const f = (name: string, rec: number, pages = 16): FlatFile => new FlatFile(dir === null ? null : join(dir, name), rec, pages, readOnly)
    this.loc = f('loc.bin', LOC_BYTES, 256)
    this.blocks = f('blocks.bin', BLOCK_BYTES, 64)
    this.bnodes = f('bnodes.bin', 32, 128)
    if (dir !== null) {
      this.db = new Database(join(dir, 'index.db'), { readonly: readOnly, fileMustExist: readOnly })
      if (!readOnly) {
        // WAL + synchronous=NORMAL: commits do not fsync, but the database is never
        // corrupted by a crash (a lost tail of transactions only moves the checkpoint
        // back; the index is rebuilt from the segments after it).
        this.db.pragma('journal_mode = WAL')
        this.db.pragma('synchronous = NORMAL')
        // Bounded memory: SQLite's page cache at 4 MB whatever the table sizes.
        this.db.pragma('cache_size = -4096')
        this.db.exec(`
          CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS device(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, max_seq INTEGER NOT NULL);
          CREATE TABLE IF NOT EXISTS frame(dev INTEGER NOT NULL, seq INTEGER NOT NULL, leaf INTEGER NOT NULL, PRIMARY KEY(dev, seq)) WITHOUT ROWID;
          CREATE INDEX IF NOT EXISTS frame_by_leaf ON frame(dev, leaf);
          CREATE TABLE IF NOT EXISTS hash(h6 INTEGER NOT NULL, leaf INTEGER NOT NULL, PRIMARY KEY(h6, leaf)) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS consent(leaf INTEGER PRIMARY KEY, record BLOB NOT NULL);
          CREATE TABLE IF NOT EXISTS witness(height INTEGER NOT NULL, pub BLOB NOT NULL, sig BLOB NOT NULL, PRIMARY KEY(height, pub)) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS seg(seg INTEGER PRIMARY KEY, first INTEGER NOT NULL, end INTEGER NOT NULL, tmin REAL);
        `)
        const fmt = this.db.prepare(`SELECT v FROM meta WHERE k = 'format'`).get() as { v: string } | undefined
        if (!fmt) this.db.prepare(`INSERT INTO meta(k, v) VALUES ('format', ?)`).run(String(INDEX_FORMAT))
      }
      const fmt = this.db.prepare(`SELECT v FROM meta WHERE k = 'format'`).get() as { v: string } | undefined
      if (!fmt || fmt.v !== String(INDEX_FORMAT)) throw new Error(`index format ${fmt?.v ?? 'missing'}, expected ${INDEX_FORMAT}`)
      const p = (name: string, sql: string): void => {
        this.st[name] = this.db!.prepare(sql)
      }
      p('seq', 'SELECT leaf FROM frame WHERE dev = ? AND seq = ?')
      p('hash', 'SELECT leaf FROM hash WHERE h6 = ? ORDER BY leaf')
      p('devLeaves', 'SELECT leaf FROM frame WHERE dev = ? AND leaf >= ? AND leaf < ? ORDER BY leaf LIMIT ?')
      p('witness', 'SELECT pub, sig FROM witness WHERE height = ?')
      if (!readOnly) {
        p('insDevice', 'INSERT OR REPLACE INTO device(id, name, max_seq) VALUES (?, ?, ?)')
        p('insFrame', 'INSERT OR IGNORE INTO frame(dev, seq, leaf) VALUES (?, ?, ?)')
        p('insHash', 'INSERT OR IGNORE INTO hash(h6, leaf) VALUES (?, ?)')
        p('insConsent', 'INSERT OR REPLACE INTO consent(leaf, record) VALUES (?, ?)')
        p('insWitness', 'INSERT OR IGNORE INTO witness(height, pub, sig) VALUES (?, ?, ?)')
        p('insSeg', 'INSERT OR REPLACE INTO seg(seg, first, end, tmin) VALUES (?, ?, ?, ?)')
        p('setMeta', 'INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)')
        p('delMeta', 'DELETE FROM meta WHERE k = ?')
      }
    }
  }

  /**
   * Opens the index directory of a ledger. Writers: a database that cannot be opened is
   * removed and started afresh (`fresh: true`). Read-only: null if there is no usable index.
   */
  static open(ledgerDir: string, readOnly: boolean, log: (m: string) => void): IndexStore | null {
    const dir = join(ledgerDir, 'index')
    if (readOnly) {
      if (!existsSync(join(dir, 'index.db'))) return null
      try {
        return new IndexStore(dir, true)
      } catch {
        return null
      }
    }
    mkdirSync(dir, { recursive: true })
    try {
      return new IndexStore(dir, false)
    } catch (e) {
      log(`ledger: index in ${dir} is unusable (${(e as Error).message}); rebuilding it from the segment files`)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      return new IndexStore(dir, false)
    }
  }

  /** Everything in memory (read-only open of a ledger without an index). */
  static memory(): IndexStore {
    return new IndexStore(null, true)
  }

  get persistent(): boolean {
    return this.db !== undefined
  }

  checkpoint(): Checkpoint | undefined {
    if (!this.db) return undefined
    const r = this.db.prepare(`SELECT v FROM meta WHERE k = 'ckpt'`).get() as { v: string } | undefined
    return r ? (JSON.parse(r.v) as Checkpoint) : undefined
  }

  /** A segment whose retention rewrite may not have reached the locators (crash in between). */
  pruneMarker(): { seg: number; first: number } | undefined {
    if (!this.db) return undefined
    const r = this.db.prepare(`SELECT v FROM meta WHERE k = 'prune'`).get() as { v: string } | undefined
    return r ? (JSON.parse(r.v) as { seg: number; first: number }) : undefined
  }

  setPruneMarker(m: { seg: number; first: number } | undefined): void {
    if (!this.db || this.readOnly) return
    // This one must survive power loss before the segment is renamed: full sync.
    this.db.pragma('synchronous = FULL')
    try {
      if (m) this.st.setMeta.run('prune', JSON.stringify(m))
      else this.st.delMeta.run('prune')
    } finally {
      this.db.pragma('synchronous = NORMAL')
    }
  }

  /**
   * Cuts every file back to the checkpoint (or to nothing). Throws if a file holds fewer
   * records than the checkpoint says (deleted or truncated behind our back).
   */
  adopt(c: Checkpoint | undefined): void {
    const n = c?.leaves ?? 0
    const want: [FlatFile, number, string][] = [
      [this.loc, n, 'loc.bin'],
      [this.blocks, c?.blocks ?? 0, 'blocks.bin'],
      [this.bnodes, c?.bnodes ?? 0, 'bnodes.bin'],
    ]
    for (const h of FileLevels.heights(n)) want.push([this.levels.level(h) as FlatFile, Math.floor(n / 2 ** h), `L${h}`])
    for (const [f, k, name] of want) {
      if (this.dir !== null && f.fileCount() < k) throw new Error(`${name} holds ${f.fileCount()} records, checkpoint needs ${k}`)
    }
    for (const [f, k] of want) f.reset(k, !this.readOnly)
    // No checkpoint: nothing in the database is trusted either.
    if (!c && this.db && !this.readOnly) this.db.exec('DELETE FROM device; DELETE FROM frame; DELETE FROM hash; DELETE FROM consent; DELETE FROM witness; DELETE FROM seg; DELETE FROM meta WHERE k = \'prune\'')
    // Levels above the checkpoint's height may hold stale entries from a later, lost state.
    if (!this.readOnly && this.dir !== null) for (let h = FileLevels.heights(n).at(-1)! + 1; h < 53; h++) if (h >= 4 && existsSync(join(this.dir, `L${String(h).padStart(2, '0')}.bin`))) (this.levels.level(h) as FlatFile).reset(0, true)
  }

  devices(): { id: number; name: string; maxSeq: number }[] {
    if (!this.db) return []
    // The highest seq comes from the frame rows themselves (O(log n) per device on the
    // primary key), so it can never lag behind them: hasFrame relies on it.
    return this.db.prepare('SELECT id, name, coalesce((SELECT max(seq) FROM frame WHERE dev = device.id), -1) AS maxSeq FROM device ORDER BY id').all() as { id: number; name: string; maxSeq: number }[]
  }

  segStats(): [number, SegStat][] {
    if (!this.db) return []
    return (this.db.prepare('SELECT seg, first, end, tmin FROM seg').all() as { seg: number; first: number; end: number; tmin: number | null }[]).map((r) => [r.seg, { first: r.first, end: r.end, tmin: r.tmin ?? Infinity }])
  }

  consents(): { leaf: number; record: Uint8Array }[] {
    if (!this.db) return []
    return this.db.prepare('SELECT leaf, record FROM consent ORDER BY leaf').all() as { leaf: number; record: Uint8Array }[]
  }

  leafBySeq(dev: number, seq: number): number {
    if (!this.db) return -1
    const r = this.st.seq.get(dev, seq) as { leaf: number } | undefined
    return r ? r.leaf : -1
  }

  leavesByHashPrefix(h6: number): number[] {
    if (!this.db) return []
    return (this.st.hash.all(h6) as { leaf: number }[]).map((r) => r.leaf)
  }

  deviceLeaves(dev: number, from: number, below: number, limit: number): number[] {
    if (!this.db) return []
    return (this.st.devLeaves.all(dev, from, below, limit) as { leaf: number }[]).map((r) => r.leaf)
  }

  witnesses(height: number): { publicKey: Uint8Array; signature: Uint8Array }[] {
    if (!this.db) return []
    return (this.st.witness.all(height) as { pub: Buffer; sig: Buffer }[]).map((r) => ({ publicKey: new Uint8Array(r.pub), signature: new Uint8Array(r.sig) }))
  }

  /** Writes the flat files up to the checkpoint (no sync); returns them, for the caller to fdatasync. */
  writeFiles(c: Checkpoint): FlatFile[] {
    if (!this.db || this.readOnly) return []
    const files: FlatFile[] = [this.loc, this.blocks, this.bnodes]
    this.loc.flush(c.leaves)
    this.blocks.flush(c.blocks)
    this.bnodes.flush(c.bnodes)
    for (const h of FileLevels.heights(c.leaves)) {
      const f = this.levels.level(h) as FlatFile
      f.flush(Math.floor(c.leaves / 2 ** h))
      files.push(f)
    }
    return files
  }

  /** Commits the rows and the checkpoint in one transaction (after writeFiles' files were synced). */
  commitRows(c: Checkpoint, rows: IndexRows): void {
    if (!this.db || this.readOnly) return
    const st = this.st
    this.db.transaction(() => {
      for (const d of rows.devices) st.insDevice.run(d.id, d.name, d.maxSeq)
      for (const f of rows.frames) st.insFrame.run(f[0], f[1], f[2])
      for (const h of rows.hashes) st.insHash.run(h[0], h[1])
      for (const r of rows.consents) st.insConsent.run(r[0], r[1])
      for (const w of rows.witnesses) st.insWitness.run(w[0], w[1], w[2])
      for (const [s, v] of rows.segs) st.insSeg.run(s, v.first, v.end, Number.isFinite(v.tmin) ? v.tmin : null)
      st.setMeta.run('ckpt', JSON.stringify(c))
    })()
  }

  /** Forgets the checkpoint: the next open rebuilds the whole index. */
  invalidate(reason: string): void {
    if (!this.db || this.readOnly) return
    this.st.setMeta.run('damaged', reason)
  }

  /** Why a reader found the index damaged (see invalidate), if one did. */
  damaged(): string | undefined {
    if (!this.db) return undefined
    return (this.db.prepare(`SELECT v FROM meta WHERE k = 'damaged'`).get() as { v: string } | undefined)?.v
  }

  close(): void {
    for (const f of this.levels.files) f?.close()
    this.loc.close()
    this.blocks.close()
    this.bnodes.close()
    this.db?.close()
    this.db = undefined
  }

  /** Removes the whole index (it is rebuilt from the segments on the next open). */
  static remove(ledgerDir: string): void {
    rmSync(join(ledgerDir, 'index'), { recursive: true, force: true })
  }
}
