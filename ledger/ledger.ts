/**
 * The ledger: durable leaves (frames, consent records), blocks cut every T ms or N
 * leaves, proofs, consent state, retention. I/O lives in store.ts; hashing and proofs
 * in merkle.ts / tree-index.ts; this file keeps the indexes and the rules.
 * API and formats: docs/ledger.md.
 */
import type { KeyObject } from 'node:crypto'
import { hasher, sha256, leafHashFast, ed25519PrivateKey, ed25519Sign, ed25519Verify } from './crypto.ts'
import { rangeRoot, inclusionProof, toHex, bytesEqual, rootFromInclusionProof } from './merkle.ts'
import { LeafTree, SubtreeCache, blockNodeSource, blockNodeCount } from './tree-index.ts'
import { SegmentStore, StorageError, parseSegment, segName, listSegments, readRecordAt, type ScannedRecord } from './store.ts'
import { IndexStore, type Checkpoint, type IndexRows, type SegStat } from './index-store.ts'
import { encodeHeader, decodeHeader, blockHash, blockToBeSigned, witnessToBeSigned, ZERO_HASH, type BlockHeader } from './block.ts'
import {
  RecordType, encodeFrameSealable, encodePrunedFrame, decodeFrameLike, encodeConsentRecord, decodeConsentRecord,
  encodeBlockRecord, decodeBlockRecord, encodeWitnessRecord, decodeWitnessRecord, type FrameMeta,
} from './records.ts'
import { ConsentState, parseConsent, ConsentError, type ConsentChange } from './consent.ts'
import type { LeafSource } from './merkle.ts'
import { readMeta, writeMeta } from './meta.ts'
import { mkdir, readFile, truncate, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export { ConsentError, StorageError }

export interface LedgerOptions {
  /** Data directory (created if missing). */
  dir: string
  /** Producer's Ed25519 key (32-byte seed + 32-byte public key). Omit for a replica that only imports blocks. */
  producerKey?: { privateKey: Uint8Array; publicKey: Uint8Array }
  /** Required for a replica: the producer public key every block must be signed with. */
  producerPublicKey?: Uint8Array
  producerId: string
  /** Cut a block at most this long after its first leaf (ms). */
  blockIntervalMs?: number
  /** ... or as soon as it has this many leaves. */
  blockMaxLeaves?: number
  /** Prune frame payloads whose t0 is older than this many days (hashes and headers stay). */
  retentionDays?: number
  /** Extra wait before each group commit (ms); 0 = commit on the next tick. */
  groupCommitMs?: number
  /** Roll to a new segment file at a block boundary once this size is reached. */
  segmentBytes?: number
  /** Where operational messages go (torn tail cut, pruning); default console.error. */
  log?: (msg: string) => void
  /** Clock (tests). */
  now?: () => number
  /** Open for reading only (CLI tools next to a running gateway): no writes, no timers, no tail repair. */
  readOnly?: boolean
  /** Write the on-disk index checkpoint at most this often (ms); leaves not yet indexed stay in memory. */
  indexCommitMs?: number
}

/** One commented defaults object, merged with the caller's options. */
const DEFAULTS = {
  blockIntervalMs: 1000, // paper's rule: a block per second under load
  blockMaxLeaves: 4096, // ... or per 4096 leaves, whichever comes first
  groupCommitMs: 0, // commit on the next tick; concurrent appends share the sync
  segmentBytes: 64 * 1024 * 1024, // keeps retention rewrites bounded
  indexCommitMs: 1000, // bounds the in-memory tail to ~1 s of leaves; each commit costs a few fdatasyncs
}

export class LedgerError extends Error {
  override name = 'LedgerError'
  constructor(message: string, readonly code: 'duplicate' | 'invalid' | 'not-found' | 'closed' | 'readonly' | 'block') {
    super(message)
  }
}

export type LeafKind = 'frame' | 'consent' | 'pruned'
const KIND_FRAME = 1
const KIND_CONSENT = 2
const KIND_PRUNED = 3

export interface StoredBlock {
  header: BlockHeader
  headerBytes: Uint8Array
  signature: Uint8Array
  hash: Uint8Array
  witnesses: { publicKey: Uint8Array; signature: Uint8Array }[]
}

export interface FrameInfo {
  leafIndex: number
  leafHash: string
  deviceId: string
  seq: number
  t0: number
  /** Frame bytes, or null once retention pruned them. */
  bytes: Uint8Array | null
}

export interface ProofBundle {
  v: 1
  leaf: { hash: string; index: number; kind: LeafKind; deviceId?: string; seq?: number; t0?: number; bytes?: string }
  block: { header: string; signature: string; hash: string; witnesses: { publicKey: string; signature: string }[] }
  inBlock: { index: number; size: number; path: string[] }
  inLog: { index: number; size: number; path: string[] }
  logRoot: string
}

/** Exported block with its leaves' record bodies, as sent between peers. */
export interface BlockTransfer {
  header: string
  signature: string
  witnesses: { publicKey: string; signature: string }[]
  /** Base64 record bodies of the block's leaves (frame, pruned frame or consent), in order. */
  leaves: string[]
}

/** The index cannot be trusted (damaged, deleted, disagrees with the segments): openLedger rebuilds it. */
class IndexUntrusted extends Error {}

/** First 6 bytes of a leaf hash as a number (the SQLite hash-index key). */
function hashPrefix(h: Uint8Array): number {
  return ((h[0] * 256 + h[1]) * 256 + h[2]) * 16777216 + ((h[3] << 16) | (h[4] << 8) | h[5])
}

/** Device numbers are O(devices) in memory; `dbMax` is the highest seq the SQLite index holds. */
interface DeviceEntry {
  id: number
  dbMax: number
  maxSeq: number
}

/** ... or as soon as this many leaves are waiting, whatever indexCommitMs says (bounds the tail's memory). */
const COMMIT_LEAVES = 1 << 16
const BLOCK_LRU = 128

export class Ledger {
  /** Leaf hashes and subtree roots (in the index files; see tree-index.ts, index-store.ts). */
  tree!: LeafTree
  private idx!: IndexStore
  private deviceNames: string[] = []
  private devices = new Map<string, DeviceEntry>()
  private dirtyDevices = new Set<number>()
  /** (device number -> seq -> leaf) for leaves not yet in the SQLite index. */
  private tailSeq = new Map<number, Map<number, number>>()
  private tailConsent: [number, Uint8Array][] = []
  private tailWitness: [number, Uint8Array, Uint8Array][] = []
  private segStats = new Map<number, SegStat>()
  private dirtySegs = new Set<number>()
  /** Leaves and blocks covered by the index checkpoint. */
  private indexed = 0
  private ckpt: Checkpoint | undefined
  private committing: Promise<void> | undefined
  /** Set once a read found the index damaged: no more checkpoints until it is rebuilt. */
  private indexBroken = false
  private lastCommit = 0
  private blockCount = 0
  private durableBlocks = 0
  private lastBlock: StoredBlock | undefined
  private blockLru = new Map<number, StoredBlock>()
  private unflushed = new Map<number, StoredBlock>()
  /** First leaf not yet in a block. */
  private pendingStart = 0
  private pendingSince = 0
  private store!: SegmentStore
  private key: KeyObject | undefined
  private timer: NodeJS.Timeout | undefined
  private pruneTimer: NodeJS.Timeout | undefined
  private blockListeners = new Set<(b: StoredBlock) => void>()
  private consentListeners = new Set<(c: ConsentChange) => void>()
  readonly consent = new ConsentState()
  readonly producerPublicKey: Uint8Array
  private readonly opts: Required<Pick<LedgerOptions, 'blockIntervalMs' | 'blockMaxLeaves' | 'groupCommitMs' | 'segmentBytes' | 'indexCommitMs'>> & LedgerOptions
  private readonly now: () => number
  private readonly log: (msg: string) => void
  private closed = false

  constructor(opts: LedgerOptions) {
    this.opts = { ...opts, ...DEFAULTS, ...stripUndefined(opts) }
    this.now = opts.now ?? Date.now
    this.log = opts.log ?? ((m) => console.error(m))
    if (opts.producerKey) {
      this.key = ed25519PrivateKey(opts.producerKey.privateKey, opts.producerKey.publicKey)
      this.producerPublicKey = opts.producerKey.publicKey
      // A key pair whose halves do not match would sign blocks nobody can verify.
      const probe = ed25519Sign(this.key, new Uint8Array(1))
      if (!ed25519Verify(this.producerPublicKey, new Uint8Array(1), probe)) throw new LedgerError('producerKey: publicKey does not match privateKey', 'invalid')
    } else if (opts.producerPublicKey) this.producerPublicKey = opts.producerPublicKey
    else throw new LedgerError('expected producerKey (producer) or producerPublicKey (replica)', 'invalid')
    if (typeof opts.producerId !== 'string' || opts.producerId.length === 0) throw new LedgerError(`producerId: expected a non-empty string, got ${JSON.stringify(opts.producerId)}`, 'invalid')
    for (const k of ['blockIntervalMs', 'blockMaxLeaves', 'groupCommitMs', 'segmentBytes', 'indexCommitMs'] as const) {
      const v = this.opts[k]
      if (!Number.isFinite(v) || v < 0 || (k === 'blockMaxLeaves' && v < 1)) throw new LedgerError(`${k}: expected a positive number, got ${v}`, 'invalid')
    }
  }

  // ------------------------------------------------------------------ open / load

  /** @internal use openLedger() */
  async init(noIndex = false): Promise<void> {
    if (!this.opts.readOnly) await mkdir(this.opts.dir, { recursive: true })
    const meta = await readMeta(this.opts.dir)
    if (meta && (!bytesEqual(meta.producerPublicKey, this.producerPublicKey) || meta.producerId !== this.opts.producerId)) {
      throw new LedgerError(`${this.opts.dir} belongs to producer '${meta.producerId}' key ${toHex(meta.producerPublicKey)}, not '${this.opts.producerId}' key ${toHex(this.producerPublicKey)}`, 'invalid')
    }
    if (!meta && !this.opts.readOnly) await writeMeta(this.opts.dir, { producerId: this.opts.producerId, producerPublicKey: this.producerPublicKey })
    this.idx = (noIndex ? null : IndexStore.open(this.opts.dir, !!this.opts.readOnly, this.log)) ?? IndexStore.memory()
    this.tree = new LeafTree(hasher, this.idx.levels)
    let startAt: { seg: number; offset: number } | undefined
    try {
      startAt = await this.adoptIndex()
      this.store = await SegmentStore.open(this.opts.dir, {
        groupCommitMs: this.opts.groupCommitMs,
        segmentBytes: this.opts.segmentBytes,
        log: this.log,
        onRecord: (r) => this.load(r),
        readOnly: this.opts.readOnly,
        startAt,
      })
    } catch (e) {
      // The segments after the checkpoint do not fit the index: it cannot be trusted.
      if (startAt && e instanceof StorageError) {
        this.idx.close()
        throw new IndexUntrusted(e.message)
      }
      this.idx.close()
      throw e
    }
    if (this.opts.readOnly) {
      this.key = undefined
      return
    }
    this.durableBlocks = this.blockCount
    this.commitIndex(true, true)
    this.pendingSince = this.now()
    if (this.key) {
      this.timer = setInterval(() => {
        if (this.tree.size > this.pendingStart) this.cutBlock()
      }, Math.max(1, this.opts.blockIntervalMs))
      // Referenced on purpose: pending leaves must get their block; close() stops it.
    }
    if (this.opts.retentionDays !== undefined) {
      await this.prune()
      this.pruneTimer = setInterval(() => void this.prune().catch((e) => this.log(`ledger: retention failed: ${e.message}`)), 3600_000)
      this.pruneTimer.unref()
    }
  }

  /**
   * Trusts the index up to its checkpoint after checking it against the segment files
   * (the checkpoint's block record, its hash, and the log root recomputed from the level
   * files); returns where scanning resumes. Throws IndexUntrusted if anything disagrees.
   */
  private async adoptIndex(): Promise<{ seg: number; offset: number } | undefined> {
    const idx = this.idx
    try {
      const c = idx.checkpoint()
      const damaged = idx.damaged()
      if (damaged !== undefined) throw new Error(`damaged: ${damaged}`)
      idx.adopt(c)
      if (!c) return undefined
      if (c.v !== 1 || !(c.blocks >= 1) || !(c.leaves >= 1)) throw new Error(`bad checkpoint ${JSON.stringify(c)}`)
      this.tree.restore(c.leaves)
      const brec = idx.blocks.get(c.blocks - 1)
      if (brec.readUInt32LE(0) !== c.seg || brec.readDoubleLE(8) !== c.off) throw new Error('blocks.bin disagrees with the checkpoint')
      const body = readRecordAt(this.opts.dir, c.seg, c.off)
      const b = this.blockFromRecord(body)
      if (toHex(b.hash) !== c.head || b.header.height !== c.blocks - 1 || b.header.logSize !== c.leaves) throw new Error(`the block record at ${segName(c.seg)} offset ${c.off} is not the checkpoint's block`)
      if (brec.readDoubleLE(16) !== b.header.firstLeaf || brec.readDoubleLE(24) + blockNodeCount(b.header.leafCount) !== c.bnodes) throw new Error('blocks.bin disagrees with the block header')
      if (!bytesEqual(this.tree.root(), b.header.logRoot)) throw new Error('the level files do not hash to the checkpoint block\'s log root')
      b.witnesses = this.witnessesOf(b.header.height)
      this.lastBlock = b
      this.blockCount = c.blocks
      this.pendingStart = c.leaves
      this.indexed = c.leaves
      this.ckpt = c
      for (const d of idx.devices()) {
        this.devices.set(d.name, { id: d.id, dbMax: d.maxSeq, maxSeq: d.maxSeq })
        this.deviceNames[d.id] = d.name
      }
      for (const [s, st] of idx.segStats()) this.segStats.set(s, st)
      for (const r of idx.consents()) this.consent.apply(parseConsent(r.record), r.leaf)
      const m = idx.pruneMarker()
      if (m && !this.opts.readOnly) {
        // Crashed between a retention rewrite and the locator update: redo the update.
        this.relocate(m.seg, m.first, parseSegment(m.seg, await readFile(join(this.opts.dir, segName(m.seg)))).records.map((r) => r.body))
        idx.setPruneMarker(undefined)
      }
      return { seg: c.seg, offset: c.off + 8 + body.length }
    } catch (e) {
      if (e instanceof IndexUntrusted) throw e
      this.idx.close()
      throw new IndexUntrusted((e as Error).message)
    }
  }

  private blockFromRecord(body: Buffer): StoredBlock {
    const r = decodeBlockRecord(body)
    const headerBytes = new Uint8Array(r.header)
    return { header: decodeHeader(headerBytes), headerBytes, signature: new Uint8Array(r.sig), hash: blockHash(sha256, headerBytes), witnesses: [] }
  }

  /**
   * Writes the index up to the last durable block (flat files, then rows and checkpoint
   * in one SQLite transaction) and drops those leaves from the in-memory tail. Runs at
   * most every indexCommitMs unless forced or COMMIT_LEAVES are waiting.
   */
  private commitIndex(force = false, sync = false): Promise<void> | undefined {
    if (this.opts.readOnly || !this.idx.persistent || this.indexBroken) return
    if (this.committing) return force ? this.committing.then(() => this.commitIndex(true)) as Promise<void> : undefined
    const B = this.durableBlocks
    if (B <= (this.ckpt?.blocks ?? 0)) return
    const b = B - 1 === this.lastBlock?.header.height ? this.lastBlock : this.getBlock(B - 1)
    if (!b) return
    const N = b.header.logSize
    if (!force && N - this.indexed < COMMIT_LEAVES && performance.now() - this.lastCommit < this.opts.indexCommitMs) return
    const rows: IndexRows = { devices: [], frames: [], hashes: [], consents: [], witnesses: [], segs: [] }
    for (let i = this.indexed; i < N; i++) {
      const r = this.idx.loc.get(i)
      rows.hashes.push([hashPrefix(this.tree.leaf(i)), i])
      if (r[0] === KIND_CONSENT) continue
      const dev = r.readUInt32LE(32)
      const seq = r.readDoubleLE(24)
      rows.frames.push([dev, seq, i])
      const d = this.devices.get(this.deviceNames[dev])!
      if (seq > d.dbMax) {
        d.dbMax = seq
        this.dirtyDevices.add(dev)
      }
    }
    // Snapshot everything the commit writes: appends go on while the files are fsynced.
    for (const id of this.dirtyDevices) {
      const d = this.devices.get(this.deviceNames[id])!
      rows.devices.push({ id, name: this.deviceNames[id], maxSeq: d.dbMax })
    }
    this.dirtyDevices = new Set()
    while (this.tailConsent.length && this.tailConsent[0][0] < N) rows.consents.push(this.tailConsent.shift()!)
    rows.witnesses = this.tailWitness.filter((w) => w[0] < B)
    this.tailWitness = this.tailWitness.filter((w) => w[0] >= B)
    for (const s of this.dirtySegs) rows.segs.push([s, { ...this.segStats.get(s)! }])
    this.dirtySegs = new Set()
    const brec = this.idx.blocks.get(B - 1)
    const c: Checkpoint = { v: 1, leaves: N, blocks: B, bnodes: brec.readDoubleLE(24) + blockNodeCount(b.header.leafCount), seg: brec.readUInt32LE(0), off: brec.readDoubleLE(8), head: toHex(b.hash) }
    this.lastCommit = performance.now()
    const done = (): void => {
      this.idx.commitRows(c, rows)
      this.ckpt = c
      this.indexed = N
      for (const [dev, m] of this.tailSeq) {
        for (const [seq, leaf] of m) if (leaf < N) m.delete(seq)
        if (m.size === 0) this.tailSeq.delete(dev)
      }
    }
    const files = this.idx.writeFiles(c)
    if (sync) {
      for (const f of files) f.sync()
      done()
      return
    }
    // fdatasync off the event loop (the thread pool), then the SQLite transaction.
    this.committing = Promise.all(files.map((f) => f.syncAsync()))
      .then(done)
      .catch((e: unknown) => {
        // Nothing was committed: put the snapshot back so the next commit writes it.
        this.tailConsent.unshift(...rows.consents)
        this.tailWitness.push(...rows.witnesses)
        for (const d of rows.devices) this.dirtyDevices.add(d.id)
        for (const [s] of rows.segs) this.dirtySegs.add(s)
        throw e
      })
      .finally(() => {
        this.committing = undefined
      })
    return this.committing
  }

  private load(r: ScannedRecord): void {
    const type = r.body[0]
    const where = `segment ${r.seg} offset ${r.offset}`
    try {
      if (type === RecordType.Frame || type === RecordType.PrunedFrame) {
        const f = decodeFrameLike(r.body)
        const h = type === RecordType.Frame ? leafHashFast(f.data) : new Uint8Array(f.data)
        this.addLeaf(type === RecordType.Frame ? KIND_FRAME : KIND_PRUNED, h, f, r.seg, r.offset)
      } else if (type === RecordType.Consent) {
        const c = decodeConsentRecord(r.body)
        const rec = parseConsent(c.record)
        const idx = this.addLeaf(KIND_CONSENT, hasher.leafHash(c.record), null, r.seg, r.offset, rec.issuedAt)
        this.tailConsent.push([idx, new Uint8Array(c.record)])
        this.consent.apply(rec, idx)
      } else if (type === RecordType.Block) {
        const b = decodeBlockRecord(r.body)
        this.acceptBlock(new Uint8Array(b.header), new Uint8Array(b.sig), [], r.seg, r.offset)
        this.durableBlocks = this.blockCount
        this.commitIndex(false, true)
      } else if (type === RecordType.Witness) {
        const w = decodeWitnessRecord(r.body)
        this.attachWitness(w.height, new Uint8Array(w.pub), new Uint8Array(w.sig))
      } else throw new StorageError(`unknown record type ${type}`)
    } catch (e) {
      throw new StorageError(`${where}: ${(e as Error).message}`, `seg ${r.seg}`, r.offset)
    }
  }

  /**
   * Locator record (40 bytes, loc.bin): kind u8 @0, segment u32le @4, offset f64le @8,
   * t (frame t0 / consent issuedAt) f64le @16, seq f64le @24, device number u32le @32.
   */
  private addLeaf(kind: number, h: Uint8Array, meta: FrameMeta | null, seg: number, off: number, t = 0): number {
    const i = this.tree.append(h)
    const r = this.idx.loc.reserve()
    r[0] = kind
    r.writeUInt32LE(seg, 4)
    r.writeDoubleLE(off, 8)
    if (meta) {
      let d = this.devices.get(meta.deviceId)
      if (!d) {
        d = { id: this.deviceNames.length, dbMax: -1, maxSeq: -1 }
        this.deviceNames.push(meta.deviceId)
        this.devices.set(meta.deviceId, d)
        this.dirtyDevices.add(d.id)
      }
      let m = this.tailSeq.get(d.id)
      if (!m) this.tailSeq.set(d.id, (m = new Map()))
      if (!m.has(meta.seq)) m.set(meta.seq, i)
      if (meta.seq > d.maxSeq) d.maxSeq = meta.seq
      t = meta.t0
      r.writeDoubleLE(meta.seq, 24)
      r.writeUInt32LE(d.id, 32)
    }
    r.writeDoubleLE(t, 16)
    const st = this.segStats.get(seg)
    const tf = kind === KIND_FRAME ? t : Infinity
    if (!st) this.segStats.set(seg, { first: i, end: i + 1, tmin: tf })
    else {
      st.end = i + 1
      if (tf < st.tmin) st.tmin = tf
    }
    this.dirtySegs.add(seg)
    return i
  }

  private kindOf(i: number): number {
    return this.idx.loc.get(i)[0]
  }
  private timeOf(i: number): number {
    return this.idx.loc.get(i).readDoubleLE(16)
  }

  /** Appends a block's blocks.bin record and its subtree roots; it becomes the head. */
  private registerBlock(b: StoredBlock, cache: SubtreeCache, seg: number, off: number): void {
    const rec = this.idx.blocks.reserve()
    rec.writeUInt32LE(seg, 0)
    rec.writeDoubleLE(off, 8)
    rec.writeDoubleLE(b.header.firstLeaf, 16)
    rec.writeDoubleLE(this.idx.bnodes.count, 24)
    for (const h of cache.nodes()) this.idx.bnodes.append(h)
    this.lastBlock = b
    this.blockCount++
    this.pendingStart = b.header.logSize
    this.blockLru.set(b.header.height, b)
    if (this.blockLru.size > BLOCK_LRU) this.blockLru.delete(this.blockLru.keys().next().value!)
  }

  private witnessesOf(height: number): StoredBlock['witnesses'] {
    const w = this.idx.witnesses(height)
    for (const t of this.tailWitness) if (t[0] === height && !w.some((x) => bytesEqual(x.publicKey, t[1]))) w.push({ publicKey: t[1], signature: t[2] })
    return w
  }

  // ------------------------------------------------------------------ blocks

  /** Verifies a block against the current state (links, roots, signature) and appends it in memory. */
  private acceptBlock(headerBytes: Uint8Array, signature: Uint8Array, witnesses: StoredBlock['witnesses'], seg: number, off: number): StoredBlock {
    const header = decodeHeader(headerBytes)
    const height = this.blockCount
    const prev = height === 0 ? ZERO_HASH : this.lastBlock!.hash
    if (header.height !== height) throw new LedgerError(`block ${header.height}: expected height ${height}`, 'block')
    if (!bytesEqual(header.prev, prev)) throw new LedgerError(`block ${height}: prev ${toHex(header.prev)} does not link to block ${height - 1} (${toHex(prev)})`, 'block')
    if (header.firstLeaf !== this.pendingStart) throw new LedgerError(`block ${height}: firstLeaf ${header.firstLeaf}, expected ${this.pendingStart}`, 'block')
    if (header.logSize !== this.tree.size) throw new LedgerError(`block ${height}: logSize ${header.logSize} but ${this.tree.size} leaves precede it`, 'block')
    if (header.leafCount === 0) throw new LedgerError(`block ${height}: empty block`, 'block')
    if (!ed25519Verify(this.producerPublicKey, blockToBeSigned(headerBytes), signature)) throw new LedgerError(`block ${height}: bad producer signature`, 'block')
    const { src, cache } = this.tree.blockSource(header.firstLeaf)
    for (let i = 1; i <= header.leafCount; i++) cache.added(i)
    const root = rangeRoot(hasher, src, 0, header.leafCount)
    if (!bytesEqual(root, header.blockRoot)) throw new LedgerError(`block ${height}: blockRoot ${toHex(header.blockRoot)} but leaves hash to ${toHex(root)}`, 'block')
    const logRoot = this.tree.root()
    if (!bytesEqual(logRoot, header.logRoot)) throw new LedgerError(`block ${height}: logRoot ${toHex(header.logRoot)} but log hashes to ${toHex(logRoot)}`, 'block')
    const b: StoredBlock = { header, headerBytes, signature, hash: blockHash(sha256, headerBytes), witnesses: [...witnesses] }
    this.registerBlock(b, cache, seg, off)
    return b
  }

  private attachWitness(height: number, pub: Uint8Array, sig: Uint8Array): boolean {
    const b = this.getBlock(height)
    if (!b) throw new LedgerError(`witness for unknown block ${height}`, 'block')
    if (!ed25519Verify(pub, witnessToBeSigned(b.headerBytes), sig)) throw new LedgerError(`block ${height}: bad witness signature`, 'block')
    if (b.witnesses.some((w) => bytesEqual(w.publicKey, pub))) return false
    b.witnesses.push({ publicKey: pub, signature: sig })
    this.tailWitness.push([height, pub, sig])
    return true
  }

  /** Cuts a block over all pending leaves now (producer only); resolves when it is durable. */
  cutBlock(): Promise<StoredBlock | undefined> {
    if (!this.key) throw new LedgerError('only the producer cuts blocks', 'readonly')
    const count = this.tree.size - this.pendingStart
    if (count === 0) return Promise.resolve(undefined)
    let tMin = Infinity
    let tMax = 0
    for (let i = this.pendingStart; i < this.tree.size; i++) {
      const t = this.timeOf(i)
      if (t < tMin) tMin = t
      if (t > tMax) tMax = t
    }
    const height = this.blockCount
    const { src, cache } = this.tree.blockSource(this.pendingStart)
    for (let i = 1; i <= count; i++) cache.added(i)
    const header: BlockHeader = {
      v: 1,
      height,
      prev: height === 0 ? ZERO_HASH : this.lastBlock!.hash,
      blockRoot: rangeRoot(hasher, src, 0, count),
      firstLeaf: this.pendingStart,
      leafCount: count,
      logSize: this.tree.size,
      logRoot: this.tree.root(),
      tMin,
      tMax,
      cutAt: this.now(),
      producerId: this.opts.producerId,
    }
    const headerBytes = encodeHeader(header)
    const signature = ed25519Sign(this.key, blockToBeSigned(headerBytes))
    const b: StoredBlock = { header, headerBytes, signature, hash: blockHash(sha256, headerBytes), witnesses: [] }
    const w = this.store.append(encodeBlockRecord(headerBytes, signature))
    this.registerBlock(b, cache, w.seg, w.offset)
    this.unflushed.set(height, b)
    this.store.maybeRoll()
    return w.durable.then(() => {
      this.unflushed.delete(height)
      this.markDurable(height)
      this.emitBlock(b)
      return b
    })
  }

  private markDurable(height: number): void {
    if (height + 1 > this.durableBlocks) this.durableBlocks = height + 1
    // The index is derived data: a failed write only means the next open re-scans more.
    const fail = (e: unknown): void => this.log(`ledger: index commit failed: ${(e as Error).message}`)
    try {
      this.commitIndex()?.catch(fail)
    } catch (e) {
      fail(e)
    }
  }

  private emitBlock(b: StoredBlock): void {
    for (const cb of this.blockListeners) {
      try {
        cb(b)
      } catch (e) {
        this.log(`ledger: onBlock listener failed: ${(e as Error).message}`)
      }
    }
  }

  // ------------------------------------------------------------------ appends

  private checkOpen(): void {
    if (this.closed) throw new LedgerError('ledger is closed', 'closed')
  }

  /**
   * Appends a frame's exact bytes as a leaf. Resolves once the bytes are durable
   * (fsync, shared with concurrent appends). Refuses a (deviceId, seq) seen before.
   */
  async appendFrame(frameBytes: Uint8Array, meta: FrameMeta): Promise<{ leafIndex: number; leafHash: Uint8Array }> {
    this.checkOpen()
    if (!this.key) throw new LedgerError('replica: frames arrive only through synced blocks', 'readonly')
    if (!(frameBytes instanceof Uint8Array) || frameBytes.length === 0) throw new LedgerError(`frameBytes: expected non-empty Uint8Array, got ${frameBytes instanceof Uint8Array ? 'empty' : typeof frameBytes}`, 'invalid')
    if (!meta || typeof meta.deviceId !== 'string') throw new LedgerError('meta.deviceId: expected a string', 'invalid')
    if (this.hasFrame(meta.deviceId, meta.seq)) throw new LedgerError(`duplicate frame: device ${meta.deviceId} seq ${meta.seq} is already in the ledger`, 'duplicate')
    let rec
    try {
      rec = encodeFrameSealable(meta, frameBytes)
    } catch (e) {
      throw new LedgerError((e as Error).message, 'invalid')
    }
    const h = leafHashFast(frameBytes)
    const w = this.store.appendSealed(rec)
    const leafIndex = this.addLeaf(KIND_FRAME, h, meta, w.seg, w.offset)
    if (this.tree.size - this.pendingStart >= this.opts.blockMaxLeaves) void this.cutBlock().catch(() => {})
    await w.durable
    return { leafIndex, leafHash: h }
  }

  /**
   * Duplicate detection: the in-memory tail (not yet indexed), then a seq above the
   * device's highest indexed seq (the usual case: no lookup), then the SQLite index.
   */
  hasFrame(deviceId: string, seq: number): boolean {
    const d = this.devices.get(deviceId)
    if (!d) return false
    if (this.tailSeq.get(d.id)?.has(seq)) return true
    if (!(seq <= d.dbMax)) return false
    return this.idx.leafBySeq(d.id, seq) >= 0
  }

  /**
   * Appends a patient-signed consent record (see consent.ts). Validates signature and
   * ordering first; resolves when durable, after the change listeners have run.
   */
  async appendConsent(recordBytes: Uint8Array): Promise<{ leafIndex: number; leafHash: Uint8Array; change: ConsentChange }> {
    this.checkOpen()
    if (!this.key) throw new LedgerError('replica: consent arrives only through synced blocks', 'readonly')
    const rec = parseConsent(recordBytes)
    this.consent.check(rec)
    const h = hasher.leafHash(recordBytes)
    const w = this.store.append(encodeConsentRecord(rec.issuedAt, recordBytes))
    const leafIndex = this.addLeaf(KIND_CONSENT, h, null, w.seg, w.offset, rec.issuedAt)
    this.tailConsent.push([leafIndex, recordBytes.slice()])
    // State changes at once (a revoke must take effect before anyone else reads it).
    const change = this.consent.apply(rec, leafIndex)
    this.emitConsent(change)
    if (this.tree.size - this.pendingStart >= this.opts.blockMaxLeaves) void this.cutBlock().catch(() => {})
    await w.durable
    return { leafIndex, leafHash: h, change }
  }

  private emitConsent(c: ConsentChange): void {
    for (const cb of this.consentListeners) {
      try {
        cb(c)
      } catch (e) {
        this.log(`ledger: onConsent listener failed: ${(e as Error).message}`)
      }
    }
  }

  /** Called synchronously on every consent change (grant or revoke); returns an unsubscribe function. */
  onConsent(cb: (c: ConsentChange) => void): () => void {
    this.consentListeners.add(cb)
    return () => this.consentListeners.delete(cb)
  }

  /** Called once each new block is durable; returns an unsubscribe function. */
  onBlock(cb: (b: StoredBlock) => void): () => void {
    this.blockListeners.add(cb)
    return () => this.blockListeners.delete(cb)
  }

  // ------------------------------------------------------------------ reads

  get size(): number {
    return this.tree.size
  }

  head(): { height: number; hash: string; logSize: number; logRoot: string; pendingLeaves: number; header?: BlockHeader } {
    const b = this.lastBlock
    return {
      height: this.blockCount - 1,
      hash: b ? toHex(b.hash) : toHex(ZERO_HASH),
      logSize: b ? b.header.logSize : 0,
      logRoot: b ? toHex(b.header.logRoot) : toHex(hasher.emptyRoot()),
      pendingLeaves: this.tree.size - this.pendingStart,
      header: b?.header,
    }
  }

  /** @internal For a writable replica: where leaves not covered by any block start, if any. */
  replicaOrphans(): { seg: number; offset: number; count: number } | undefined {
    if (this.key || this.opts.readOnly || this.tree.size === this.pendingStart) return undefined
    const i = this.pendingStart
    const r = this.idx.loc.get(i)
    return { seg: r.readUInt32LE(4), offset: r.readDoubleLE(8), count: this.tree.size - i }
  }

  /** True when this process holds the producer key (it cuts blocks, never imports them). */
  get producerIsLocal(): boolean {
    return this.key !== undefined
  }

  get height(): number {
    return this.blockCount - 1
  }

  /** Block `height`: the head, a recent one (LRU) or read back from its segment. */
  getBlock(height: number): StoredBlock | undefined {
    if (!Number.isInteger(height) || height < 0 || height >= this.blockCount) return undefined
    if (this.lastBlock && this.lastBlock.header.height === height) return this.lastBlock
    let b = this.unflushed.get(height) ?? this.blockLru.get(height)
    if (b) return b
    const rec = this.idx.blocks.get(height)
    b = this.blockFromRecord(this.store.readBody(rec.readUInt32LE(0), rec.readDoubleLE(8)))
    if (b.header.height !== height) throw new LedgerError(`index damaged: blocks.bin entry ${height} points at block ${b.header.height} (rebuilt on next open)`, 'block')
    b.witnesses = this.witnessesOf(height)
    this.blockLru.set(height, b)
    if (this.blockLru.size > BLOCK_LRU) this.blockLru.delete(this.blockLru.keys().next().value!)
    return b
  }

  /** The leaf index of a leaf hash (hex or bytes), or -1: the SQLite index, then the unindexed tail. */
  indexOf(leafHash: Uint8Array | string): number {
    const h = typeof leafHash === 'string' ? hexToBytes(leafHash) : leafHash
    if (!h || h.length !== 32) return -1
    const split = this.indexed
    for (const i of this.idx.leavesByHashPrefix(hashPrefix(h))) if (i < split && bytesEqual(this.tree.leaf(i), h)) return i
    for (let i = split; i < this.tree.size; i++) if (bytesEqual(this.tree.leaf(i), h)) return i
    return -1
  }

  /** Marks the index untrusted (next open rebuilds it) and returns the error to throw. */
  private indexDamaged(what: string): LedgerError {
    this.log(`ledger: index damaged (${what}); it will be rebuilt on the next open`)
    if (!this.opts.readOnly && !this.indexBroken) this.idx.invalidate(what)
    this.indexBroken = true
    return new LedgerError(`index damaged: ${what} (rebuilt on next open)`, 'block')
  }

  private async frameAt(i: number): Promise<FrameInfo> {
    let r = this.idx.loc.get(i)
    const k = r[0]
    const deviceId = this.deviceNames[r.readUInt32LE(32)]
    const seq = r.readDoubleLE(24)
    const t0 = r.readDoubleLE(16)
    const leafHash = new Uint8Array(this.tree.leaf(i))
    let bytes: Uint8Array | null = null
    if (k === KIND_FRAME) {
      await this.store.sync()
      // Re-read: retention may have pruned it (and moved it) while we waited.
      r = this.idx.loc.get(i)
      if (r[0] === KIND_FRAME) {
        // The locator is derived data: never hand out bytes that are not this leaf's.
        let f
        try {
          f = decodeFrameLike(this.store.readBody(r.readUInt32LE(4), r.readDoubleLE(8)))
        } catch {
          throw this.indexDamaged(`locator of leaf ${i}`)
        }
        if (f.deviceId !== deviceId || f.seq !== seq || !bytesEqual(leafHashFast(f.data), leafHash)) throw this.indexDamaged(`locator of leaf ${i}`)
        bytes = new Uint8Array(f.data)
      }
    }
    return { leafIndex: i, leafHash: toHex(leafHash), deviceId, seq, t0, bytes }
  }

  /** A frame by its leaf hash (hex or bytes); undefined if unknown or not a frame. */
  async getFrame(leafHash: Uint8Array | string): Promise<FrameInfo | undefined> {
    const i = this.indexOf(leafHash)
    if (i < 0 || this.kindOf(i) === KIND_CONSENT) return undefined
    return this.frameAt(i)
  }

  /** Frames by device and t0 range [from, to), in ledger order, at most `limit` (default 1000). */
  async frames(q: { deviceId?: string; from?: number; to?: number; limit?: number } = {}): Promise<FrameInfo[]> {
    const limit = q.limit ?? 1000
    const from = q.from ?? -Infinity
    const to = q.to ?? Infinity
    const out: FrameInfo[] = []
    const take = async (i: number): Promise<void> => {
      const r = this.idx.loc.get(i)
      if (r[0] === KIND_CONSENT) return
      const t = r.readDoubleLE(16)
      if (t >= from && t < to) out.push(await this.frameAt(i))
    }
    if (q.deviceId === undefined) {
      for (let i = 0; i < this.tree.size && out.length < limit; i++) await take(i)
      return out
    }
    const d = this.devices.get(q.deviceId)
    if (!d) return out
    // Indexed leaves from SQLite (in pages: no cursor stays open across awaits), then the tail.
    const split = this.indexed
    let cursor = 0
    for (;;) {
      const page = this.idx.deviceLeaves(d.id, cursor, split, 512)
      for (const i of page) {
        if (out.length >= limit) return out
        await take(i)
      }
      if (page.length < 512) break
      cursor = page[page.length - 1] + 1
    }
    for (let i = split; i < this.tree.size && out.length < limit; i++) if (this.idx.loc.get(i).readUInt32LE(32) === d.id && this.kindOf(i) !== KIND_CONSENT) await take(i)
    return out
  }

  /** Block containing leaf i (binary search on firstLeaf in blocks.bin), or -1 if still pending. */
  blockOf(i: number): number {
    if (!(i >= 0 && i < this.pendingStart)) return -1
    let lo = 0
    let hi = this.blockCount - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.idx.blocks.get(mid).readDoubleLE(16) <= i) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /**
   * A self-contained, JSON-able proof for a leaf: its path in its block and in the whole
   * log at that block, plus the signed header. Cuts a block first if the leaf is pending.
   */
  async proof(leafHash: Uint8Array | string, opts: { includeBytes?: boolean } = {}): Promise<ProofBundle> {
    const i = this.indexOf(leafHash)
    if (i < 0) throw new LedgerError(`no leaf with hash ${typeof leafHash === 'string' ? leafHash : toHex(leafHash)}`, 'not-found')
    let bi = this.blockOf(i)
    if (bi < 0) {
      if (!this.key) throw new LedgerError(`leaf ${i} is not in a block yet`, 'not-found')
      await this.cutBlock()
      bi = this.blockOf(i)
    }
    const bundle = this.proofAt(i, bi)
    if (opts.includeBytes !== false) {
      const k = this.kindOf(i)
      if (k === KIND_FRAME) {
        const f = await this.frameAt(i)
        if (f.bytes) bundle.leaf.bytes = Buffer.from(f.bytes).toString('base64')
      } else if (k === KIND_CONSENT) {
        await this.store.sync()
        const r = this.idx.loc.get(i)
        bundle.leaf.bytes = decodeConsentRecord(this.store.readBody(r.readUInt32LE(4), r.readDoubleLE(8))).record.toString('base64')
      }
    }
    return bundle
  }

  /** Synchronous proof without frame bytes (bench, sync). */
  proofAt(i: number, bi = this.blockOf(i)): ProofBundle {
    const b = this.getBlock(bi)
    if (!b) throw new LedgerError(`leaf ${i} is not in a block`, 'not-found')
    const first = b.header.firstLeaf
    const count = b.header.leafCount
    const nodesStart = this.idx.blocks.get(bi).readDoubleLE(24)
    const src: LeafSource = { leaf: (j) => this.tree.leaf(first + j), subtree: blockNodeSource(count, (j) => this.idx.bnodes.get(nodesStart + j)) }
    const r = this.idx.loc.get(i)
    const k = r[0]
    const leafHash = new Uint8Array(this.tree.leaf(i))
    const inBlock = inclusionProof(hasher, src, i - first, count).map((x) => new Uint8Array(x))
    const inLog = this.tree.inclusion(i, b.header.logSize).map((x) => new Uint8Array(x))
    // The index files are derived data: check both paths against the signed roots
    // (O(log n) hashes) so a damaged index can never produce a wrong proof.
    if (!bytesEqual(rootFromInclusionProof(hasher, i - first, count, leafHash, inBlock), b.header.blockRoot) || !bytesEqual(rootFromInclusionProof(hasher, i, b.header.logSize, leafHash, inLog), b.header.logRoot)) {
      throw this.indexDamaged(`proof of leaf ${i} does not reach block ${bi}'s roots`)
    }
    return {
      v: 1,
      leaf: {
        hash: toHex(leafHash),
        index: i,
        kind: k === KIND_FRAME ? 'frame' : k === KIND_CONSENT ? 'consent' : 'pruned',
        ...(k !== KIND_CONSENT ? { deviceId: this.deviceNames[r.readUInt32LE(32)], seq: r.readDoubleLE(24), t0: r.readDoubleLE(16) } : {}),
      },
      block: { header: toHex(b.headerBytes), signature: toHex(b.signature), hash: toHex(b.hash), witnesses: b.witnesses.map((w) => ({ publicKey: toHex(w.publicKey), signature: toHex(w.signature) })) },
      inBlock: { index: i - first, size: count, path: inBlock.map(toHex) },
      inLog: { index: i, size: b.header.logSize, path: inLog.map(toHex) },
      logRoot: toHex(b.header.logRoot),
    }
  }

  /** RFC 9162 consistency proof between two log sizes (hex nodes). */
  consistency(size1: number, size2: number): string[] {
    if (size2 > this.tree.size) throw new LedgerError(`size2 ${size2} > log size ${this.tree.size}`, 'invalid')
    return this.tree.consistency(size1, size2).map(toHex)
  }

  // ------------------------------------------------------------------ peer sync support

  /** A block with its leaves' record bodies, for sending to a peer. */
  async exportBlock(height: number): Promise<BlockTransfer | undefined> {
    const b = this.getBlock(height)
    if (!b) return undefined
    await this.store.sync()
    const leaves: string[] = []
    for (let i = b.header.firstLeaf; i < b.header.logSize; i++) {
      const r = this.idx.loc.get(i)
      leaves.push(this.store.readBody(r.readUInt32LE(4), r.readDoubleLE(8)).toString('base64'))
    }
    return {
      header: toHex(b.headerBytes),
      signature: toHex(b.signature),
      witnesses: b.witnesses.map((w) => ({ publicKey: toHex(w.publicKey), signature: toHex(w.signature) })),
      leaves,
    }
  }

  /**
   * Fully verifies a block received from a peer (every leaf re-hashed, roots, link,
   * producer signature) and stores it with its leaves. Throws LedgerError('block') and
   * changes nothing if anything is wrong. Replicas only.
   */
  async importBlock(t: BlockTransfer): Promise<StoredBlock> {
    this.checkOpen()
    if (this.key) throw new LedgerError('the producer does not import blocks', 'readonly')
    if (this.tree.size !== this.pendingStart) throw new LedgerError('replica has leaves outside blocks', 'block')
    const headerBytes = hexToBytes(t.header)
    const signature = hexToBytes(t.signature)
    if (!headerBytes || !signature || !Array.isArray(t.leaves)) throw new LedgerError('malformed block transfer', 'block')
    const header = decodeHeader(headerBytes)
    if (t.leaves.length !== header.leafCount) throw new LedgerError(`block ${header.height}: ${t.leaves.length} leaves sent, header says ${header.leafCount}`, 'block')
    if (header.height !== this.blockCount) throw new LedgerError(`block ${header.height}: expected height ${this.blockCount}`, 'block')
    if (!ed25519Verify(this.producerPublicKey, blockToBeSigned(headerBytes), signature)) throw new LedgerError(`block ${header.height}: bad producer signature`, 'block')
    // Decode and hash every leaf before touching any state.
    const parsed: { body: Buffer; hash: Uint8Array; kind: number; meta: FrameMeta | null; t: number; consent?: ReturnType<typeof parseConsent> }[] = []
    const staged = new ConsentStaging(this.consent)
    for (const [j, s] of t.leaves.entries()) {
      const body = Buffer.from(s, 'base64')
      try {
        const type = body[0]
        if (type === RecordType.Frame || type === RecordType.PrunedFrame) {
          const f = decodeFrameLike(body)
          parsed.push({ body, hash: type === RecordType.Frame ? hasher.leafHash(f.data) : new Uint8Array(f.data), kind: type === RecordType.Frame ? KIND_FRAME : KIND_PRUNED, meta: f, t: f.t0 })
        } else if (type === RecordType.Consent) {
          const c = decodeConsentRecord(body)
          const rec = parseConsent(c.record)
          staged.check(rec)
          parsed.push({ body, hash: hasher.leafHash(c.record), kind: KIND_CONSENT, meta: null, t: rec.issuedAt, consent: rec })
        } else throw new Error(`record type ${type} is not a leaf`)
      } catch (e) {
        throw new LedgerError(`block ${header.height} leaf ${j}: ${(e as Error).message}`, 'block')
      }
    }
    // Roots over the received hashes, computed on a scratch copy of the tree state.
    const leafHashes = parsed.map((p) => p.hash)
    const root = rangeRoot(hasher, { leaf: (j) => leafHashes[j] }, 0, leafHashes.length)
    if (!bytesEqual(root, header.blockRoot)) throw new LedgerError(`block ${header.height}: blockRoot mismatch (leaves hash to ${toHex(root)})`, 'block')
    const range = this.tree.cloneRange()
    for (const h of leafHashes) range.append(h)
    if (!bytesEqual(range.root(), header.logRoot) || header.logSize !== this.tree.size + leafHashes.length) throw new LedgerError(`block ${header.height}: logRoot/logSize do not extend our log`, 'block')
    const prev = this.lastBlock ? this.lastBlock.hash : ZERO_HASH
    if (!bytesEqual(header.prev, prev) || header.firstLeaf !== this.tree.size) throw new LedgerError(`block ${header.height}: does not link to our head (fork)`, 'block')
    // All checks passed: store leaves, then the block record.
    const writes: Promise<void>[] = []
    for (const p of parsed) {
      const w = this.store.append(p.body)
      writes.push(w.durable)
      const idx = this.addLeaf(p.kind, p.hash, p.meta, w.seg, w.offset, p.t)
      if (p.consent) this.emitConsent(this.consent.apply(p.consent, idx))
    }
    const witnesses = (t.witnesses ?? []).map((w) => ({ publicKey: hexToBytes(w.publicKey) ?? new Uint8Array(0), signature: hexToBytes(w.signature) ?? new Uint8Array(0) }))
    const bw = this.store.append(encodeBlockRecord(headerBytes, signature))
    writes.push(bw.durable)
    const b = this.acceptBlock(headerBytes, signature, [], bw.seg, bw.offset)
    this.unflushed.set(header.height, b)
    this.store.maybeRoll()
    for (const w of witnesses) {
      try {
        if (this.attachWitness(header.height, w.publicKey, w.signature)) writes.push(this.store.append(encodeWitnessRecord(header.height, w.publicKey, w.signature)).durable)
      } catch {
        /* an invalid witness signature is dropped, the block itself is fine */
      }
    }
    await Promise.all(writes)
    this.unflushed.delete(header.height)
    this.markDurable(header.height)
    this.emitBlock(b)
    return b
  }

  /** Signs block `height` as a witness with `key`; returns the signature. */
  witnessSign(height: number, key: { privateKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
    const b = this.getBlock(height)
    if (!b) throw new LedgerError(`no block ${height}`, 'not-found')
    return ed25519Sign(ed25519PrivateKey(key.privateKey, key.publicKey), witnessToBeSigned(b.headerBytes))
  }

  /** Stores a peer's co-signature of block `height` after checking it; false if already held. */
  async addWitness(height: number, publicKey: Uint8Array, signature: Uint8Array): Promise<boolean> {
    this.checkOpen()
    if (!this.attachWitness(height, publicKey, signature)) return false
    await this.store.append(encodeWitnessRecord(height, publicKey, signature)).durable
    return true
  }

  // ------------------------------------------------------------------ retention

  /**
   * Replaces frame payloads with t0 older than retentionDays by their leaf hash, in
   * closed segments (rewritten atomically). Leaf hashes and headers stay: proofs still verify.
   */
  async prune(nowMs = this.now()): Promise<{ pruned: number; segments: number }> {
    if (this.opts.retentionDays === undefined) return { pruned: 0, segments: 0 }
    const cutoff = nowMs - this.opts.retentionDays * 86_400_000
    await this.store.sync()
    // Everything written is durable now: index it, so every closed segment qualifies.
    this.durableBlocks = this.blockCount // store.sync(): every queued record is durable
    await this.commitIndex(true)
    const active = this.store.activeSegment
    let pruned = 0
    let segments = 0
    // Per-segment leaf ranges and earliest unpruned t0 (O(segments)): only segments with
    // something to prune are read. Only closed segments whose leaves are all indexed and
    // that lie before the checkpoint's block (so the resume position does not move).
    for (const s of [...this.segStats.keys()].sort((a, b) => a - b)) {
      const st = this.segStats.get(s)!
      if (s >= active || !this.ckpt || s >= this.ckpt.seg || st.end > this.indexed || !(st.tmin < cutoff)) continue
      const data = await readFile(join(this.opts.dir, segName(s)))
      const parsed = parseSegment(s, data)
      if (parsed.damage) throw new StorageError(`${segName(s)}: ${parsed.damage.reason} at offset ${parsed.damage.offset}; not pruning`)
      const bodies: Uint8Array[] = []
      let i = st.first
      let n = 0
      let tmin = Infinity
      for (const r of parsed.records) {
        const type = r.body[0]
        let body: Uint8Array = r.body
        if (type === RecordType.Frame || type === RecordType.PrunedFrame || type === RecordType.Consent) {
          if (type === RecordType.Frame) {
            const t = this.timeOf(i)
            if (t < cutoff) {
              body = encodePrunedFrame(decodeFrameLike(r.body), this.tree.leaf(i))
              n++
            } else if (t < tmin) tmin = t
          }
          i++
        }
        bodies.push(body)
      }
      if (i !== st.end) throw new StorageError(`${segName(s)}: holds ${i - st.first} leaves, the index says ${st.end - st.first}; not pruning (run 'mhealth ledger verify')`)
      if (n > 0) {
        // Marker first (fully synced): a crash after the rename redoes the locator update on open.
        this.idx.setPruneMarker({ seg: s, first: st.first })
        await this.store.replaceSegment(s, bodies)
        this.relocate(s, st.first, bodies)
        this.idx.setPruneMarker(undefined)
        pruned += n
        segments++
      }
      st.tmin = tmin
      this.dirtySegs.add(s)
    }
    if (pruned) this.log(`ledger: retention pruned ${pruned} frame payloads older than ${this.opts.retentionDays} days in ${segments} segment(s)`)
    return { pruned, segments }
  }

  /** Rewrites the locators (leaves and blocks) of segment s from its record bodies, in file order. */
  private relocate(s: number, first: number, bodies: Uint8Array[]): void {
    let pos = 0
    let i = first
    const rec = Buffer.alloc(40)
    const brec = Buffer.alloc(32)
    for (const body of bodies) {
      const type = body[0]
      if (type === RecordType.Frame || type === RecordType.PrunedFrame || type === RecordType.Consent) {
        rec.set(this.idx.loc.get(i))
        if (type === RecordType.PrunedFrame) rec[0] = KIND_PRUNED
        rec.writeUInt32LE(s, 4)
        rec.writeDoubleLE(pos, 8)
        this.idx.loc.put(i, rec)
        i++
      } else if (type === RecordType.Block) {
        const h = decodeHeader(new Uint8Array(decodeBlockRecord(Buffer.from(body.buffer, body.byteOffset, body.length)).header)).height
        brec.set(this.idx.blocks.get(h))
        brec.writeUInt32LE(s, 0)
        brec.writeDoubleLE(pos, 8)
        this.idx.blocks.put(h, brec)
      }
      pos += 8 + body.length
    }
    this.idx.loc.sync()
    this.idx.blocks.sync()
  }

  /**
   * Writes the index checkpoint now over every durable block (normally done after a
   * durable block at most every indexCommitMs, and by close and prune).
   */
  async flushIndex(): Promise<void> {
    this.checkOpen()
    await this.store.sync()
    this.durableBlocks = this.blockCount // store.sync(): every queued record is durable
    await this.commitIndex(true)
  }

  /** Leaves not yet in the on-disk index (held in memory until the next checkpoint). */
  get unindexedLeaves(): number {
    return this.tree.size - this.indexed
  }

  /** Flushes everything (cutting a final block if producer) and closes. Nothing acknowledged is lost. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.timer) clearInterval(this.timer)
    if (this.pruneTimer) clearInterval(this.pruneTimer)
    if (this.key && this.tree.size > this.pendingStart) await this.cutBlock()
    this.closed = true
    await this.store.close()
    if (!this.opts.readOnly) {
      this.durableBlocks = this.blockCount
      try {
        await this.commitIndex(true)
      } catch (e) {
        this.log(`ledger: index commit failed: ${(e as Error).message}`)
      }
    }
    this.idx.close()
  }
}

/** Checks a sequence of consent records against a state without changing it. */
class ConsentStaging {
  private last = new Map<string, number>()
  constructor(private readonly base: ConsentState) {}
  check(rec: ReturnType<typeof parseConsent>): void {
    const l = this.last.get(rec.patientId)
    if (l !== undefined && rec.issuedAt <= l) throw new ConsentError(`consent for ${rec.patientId}: issuedAt not increasing`)
    if (l === undefined) this.base.check(rec)
    this.last.set(rec.patientId, rec.issuedAt)
  }
}

function hexToBytes(s: string): Uint8Array | undefined {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined
  return new Uint8Array(Buffer.from(s, 'hex'))
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Opens an existing ledger directory for reading only; the producer key comes from its ledger.json. */
export async function openLedgerReadOnly(dir: string, opts: { log?: (msg: string) => void } = {}): Promise<Ledger> {
  const meta = await readMeta(dir)
  if (!meta) throw new LedgerError(`${dir} is not a ledger directory (no ledger.json)`, 'not-found')
  const o: LedgerOptions = { dir, producerPublicKey: meta.producerPublicKey, producerId: meta.producerId, readOnly: true, log: opts.log ?? (() => {}) }
  const l = new Ledger(o)
  try {
    await l.init()
    return l
  } catch (e) {
    if (!(e instanceof IndexUntrusted)) throw e
    // Read-only never repairs: read everything from the segments into memory instead.
    const m = new Ledger(o)
    await m.init(true)
    return m
  }
}

/** Opens (creating) a ledger in `opts.dir`, recovering from a torn tail. */
export async function openLedger(opts: LedgerOptions): Promise<Ledger> {
  let l = new Ledger(opts)
  try {
    await l.init()
  } catch (e) {
    if (!(e instanceof IndexUntrusted)) throw e
    ;(opts.log ?? console.error)(`ledger: index in ${join(opts.dir, 'index')} not trusted (${e.message}); rebuilding it from the segment files`)
    IndexStore.remove(opts.dir)
    l = new Ledger(opts)
    await l.init()
  }
  const orphan = l.replicaOrphans()
  if (orphan) {
    // A replica stores a block's leaves and then its header in one batch; a crash between
    // them leaves leaves no block covers. They were never acknowledged to anyone (the peer
    // still has them), so they are cut and fetched again.
    await l.close()
    for (const s of await listSegments(opts.dir)) if (s > orphan.seg) await unlink(join(opts.dir, segName(s)))
    await truncate(join(opts.dir, segName(orphan.seg)), orphan.offset)
    ;(opts.log ?? console.error)(`ledger: replica had ${orphan.count} leaves without a block (interrupted sync); cut them at ${segName(orphan.seg)} offset ${orphan.offset}`)
    return openLedger(opts)
  }
  return l
}
