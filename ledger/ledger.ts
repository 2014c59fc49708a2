/**
 * The ledger: durable leaves (frames, consent records), blocks cut every T ms or N
 * leaves, proofs, consent state, retention. I/O lives in store.ts; hashing and proofs
 * in merkle.ts / tree-index.ts; this file keeps the indexes and the rules.
 * API and formats: docs/ledger.md.
 */
import type { KeyObject } from 'node:crypto'
import { hasher, sha256, leafHashFast, ed25519PrivateKey, ed25519Sign, ed25519Verify } from './crypto.ts'
import { rangeRoot, inclusionProof, toHex, bytesEqual } from './merkle.ts'
import { LeafTree, SubtreeCache } from './tree-index.ts'
import { SegmentStore, StorageError, parseSegment, segName, listSegments, type ScannedRecord } from './store.ts'
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
}

/** One commented defaults object, merged with the caller's options. */
const DEFAULTS = {
  blockIntervalMs: 1000, // paper's rule: a block per second under load
  blockMaxLeaves: 4096, // ... or per 4096 leaves, whichever comes first
  groupCommitMs: 0, // commit on the next tick; concurrent appends share the sync
  segmentBytes: 64 * 1024 * 1024, // keeps retention rewrites bounded
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

class Growable<T extends Float64Array | Uint32Array | Uint8Array> {
  arr: T
  constructor(private readonly make: (n: number) => T) {
    this.arr = make(1024)
  }
  set(i: number, v: number): void {
    if (i >= this.arr.length) {
      const n = this.make(Math.max(this.arr.length * 2, i + 1))
      n.set(this.arr)
      this.arr = n
    }
    this.arr[i] = v
  }
}

/** Open-addressing map from a 32-byte leaf hash to its first leaf index. */
class HashIndex {
  private table = new Int32Array(1 << 12).fill(-1)
  private count = 0
  constructor(private readonly tree: LeafTree) {}
  private slot(h: Uint8Array): number {
    return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0
  }
  add(h: Uint8Array, index: number): void {
    if (this.get(h) !== -1) return
    if ((this.count + 1) * 2 > this.table.length) this.grow()
    this.insert(h, index)
    this.count++
  }
  private insert(h: Uint8Array, index: number): void {
    const mask = this.table.length - 1
    let i = this.slot(h) & mask
    while (this.table[i] !== -1) i = (i + 1) & mask
    this.table[i] = index
  }
  private grow(): void {
    const old = this.table
    this.table = new Int32Array(old.length * 2).fill(-1)
    for (const idx of old) if (idx !== -1) this.insert(this.tree.leaf(idx), idx)
  }
  get(h: Uint8Array): number {
    if (h.length !== 32) return -1
    const mask = this.table.length - 1
    let i = this.slot(h) & mask
    for (;;) {
      const idx = this.table[i]
      if (idx === -1) return -1
      if (bytesEqual(this.tree.leaf(idx), h)) return idx
      i = (i + 1) & mask
    }
  }
}

interface DeviceIndex {
  bySeq: Map<number, number>
  leaves: number[]
}

export class Ledger {
  readonly tree = new LeafTree(hasher)
  private readonly hashIndex = new HashIndex(this.tree)
  private kind = new Growable((n) => new Uint8Array(n))
  private seg = new Growable((n) => new Uint32Array(n))
  private off = new Growable((n) => new Float64Array(n))
  private time = new Growable((n) => new Float64Array(n))
  private seqs = new Growable((n) => new Float64Array(n))
  private devOf = new Growable((n) => new Uint32Array(n))
  private deviceNames: string[] = []
  private devices = new Map<string, DeviceIndex & { id: number }>()
  private blocks: StoredBlock[] = []
  private blockCaches: SubtreeCache[] = []
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
  private readonly opts: Required<Pick<LedgerOptions, 'blockIntervalMs' | 'blockMaxLeaves' | 'groupCommitMs' | 'segmentBytes'>> & LedgerOptions
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
    for (const k of ['blockIntervalMs', 'blockMaxLeaves', 'groupCommitMs', 'segmentBytes'] as const) {
      const v = this.opts[k]
      if (!Number.isFinite(v) || v < 0 || (k === 'blockMaxLeaves' && v < 1)) throw new LedgerError(`${k}: expected a positive number, got ${v}`, 'invalid')
    }
  }

  // ------------------------------------------------------------------ open / load

  /** @internal use openLedger() */
  async init(): Promise<void> {
    if (!this.opts.readOnly) await mkdir(this.opts.dir, { recursive: true })
    const meta = await readMeta(this.opts.dir)
    if (meta && (!bytesEqual(meta.producerPublicKey, this.producerPublicKey) || meta.producerId !== this.opts.producerId)) {
      throw new LedgerError(`${this.opts.dir} belongs to producer '${meta.producerId}' key ${toHex(meta.producerPublicKey)}, not '${this.opts.producerId}' key ${toHex(this.producerPublicKey)}`, 'invalid')
    }
    if (!meta && !this.opts.readOnly) await writeMeta(this.opts.dir, { producerId: this.opts.producerId, producerPublicKey: this.producerPublicKey })
    this.store = await SegmentStore.open(this.opts.dir, {
      groupCommitMs: this.opts.groupCommitMs,
      segmentBytes: this.opts.segmentBytes,
      log: this.log,
      onRecord: (r) => this.load(r),
      readOnly: this.opts.readOnly,
    })
    if (this.opts.readOnly) {
      this.key = undefined
      return
    }
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
        this.consent.apply(rec, idx)
      } else if (type === RecordType.Block) {
        const b = decodeBlockRecord(r.body)
        this.acceptBlock(new Uint8Array(b.header), new Uint8Array(b.sig), [])
      } else if (type === RecordType.Witness) {
        const w = decodeWitnessRecord(r.body)
        this.attachWitness(w.height, new Uint8Array(w.pub), new Uint8Array(w.sig))
      } else throw new StorageError(`unknown record type ${type}`)
    } catch (e) {
      throw new StorageError(`${where}: ${(e as Error).message}`, `seg ${r.seg}`, r.offset)
    }
  }

  private addLeaf(kind: number, h: Uint8Array, meta: FrameMeta | null, seg: number, off: number, t = 0): number {
    const i = this.tree.append(h)
    this.hashIndex.add(h, i)
    this.kind.set(i, kind)
    this.seg.set(i, seg)
    this.off.set(i, off)
    if (meta) {
      let d = this.devices.get(meta.deviceId)
      if (!d) {
        d = { id: this.deviceNames.length, bySeq: new Map(), leaves: [] }
        this.deviceNames.push(meta.deviceId)
        this.devices.set(meta.deviceId, d)
      }
      d.bySeq.set(meta.seq, i)
      d.leaves.push(i)
      this.devOf.set(i, d.id)
      this.seqs.set(i, meta.seq)
      this.time.set(i, meta.t0)
    } else this.time.set(i, t)
    return i
  }

  // ------------------------------------------------------------------ blocks

  /** Verifies a block against the current state (links, roots, signature) and appends it in memory. */
  private acceptBlock(headerBytes: Uint8Array, signature: Uint8Array, witnesses: StoredBlock['witnesses']): StoredBlock {
    const header = decodeHeader(headerBytes)
    const height = this.blocks.length
    const prev = height === 0 ? ZERO_HASH : this.blocks[height - 1].hash
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
    this.blocks.push(b)
    this.blockCaches.push(cache)
    this.pendingStart = header.logSize
    return b
  }

  private attachWitness(height: number, pub: Uint8Array, sig: Uint8Array): boolean {
    const b = this.blocks[height]
    if (!b) throw new LedgerError(`witness for unknown block ${height}`, 'block')
    if (!ed25519Verify(pub, witnessToBeSigned(b.headerBytes), sig)) throw new LedgerError(`block ${height}: bad witness signature`, 'block')
    if (b.witnesses.some((w) => bytesEqual(w.publicKey, pub))) return false
    b.witnesses.push({ publicKey: pub, signature: sig })
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
      const t = this.time.arr[i]
      if (t < tMin) tMin = t
      if (t > tMax) tMax = t
    }
    const height = this.blocks.length
    const { src, cache } = this.tree.blockSource(this.pendingStart)
    for (let i = 1; i <= count; i++) cache.added(i)
    const header: BlockHeader = {
      v: 1,
      height,
      prev: height === 0 ? ZERO_HASH : this.blocks[height - 1].hash,
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
    this.blocks.push(b)
    this.blockCaches.push(cache)
    this.pendingStart = this.tree.size
    const w = this.store.append(encodeBlockRecord(headerBytes, signature))
    this.store.maybeRoll()
    return w.durable.then(() => {
      this.emitBlock(b)
      return b
    })
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

  hasFrame(deviceId: string, seq: number): boolean {
    return this.devices.get(deviceId)?.bySeq.has(seq) ?? false
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
    const b = this.blocks[this.blocks.length - 1]
    return {
      height: this.blocks.length - 1,
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
    return { seg: this.seg.arr[i], offset: this.off.arr[i], count: this.tree.size - i }
  }

  /** True when this process holds the producer key (it cuts blocks, never imports them). */
  get producerIsLocal(): boolean {
    return this.key !== undefined
  }

  get height(): number {
    return this.blocks.length - 1
  }

  getBlock(height: number): StoredBlock | undefined {
    return this.blocks[height]
  }

  /** The leaf index of a leaf hash (hex or bytes), or -1. */
  indexOf(leafHash: Uint8Array | string): number {
    const h = typeof leafHash === 'string' ? hexToBytes(leafHash) : leafHash
    return h ? this.hashIndex.get(h) : -1
  }

  private async frameAt(i: number): Promise<FrameInfo> {
    const k = this.kind.arr[i]
    let bytes: Uint8Array | null = null
    if (k === KIND_FRAME) {
      await this.store.sync()
      // Re-check: retention may have pruned it while we waited.
      if (this.kind.arr[i] === KIND_FRAME) bytes = new Uint8Array(decodeFrameLike(this.store.readBody(this.seg.arr[i], this.off.arr[i])).data)
    }
    return { leafIndex: i, leafHash: toHex(this.tree.leaf(i)), deviceId: this.deviceNames[this.devOf.arr[i]], seq: this.seqs.arr[i], t0: this.time.arr[i], bytes }
  }

  /** A frame by its leaf hash (hex or bytes); undefined if unknown or not a frame. */
  async getFrame(leafHash: Uint8Array | string): Promise<FrameInfo | undefined> {
    const i = this.indexOf(leafHash)
    if (i < 0 || this.kind.arr[i] === KIND_CONSENT) return undefined
    return this.frameAt(i)
  }

  /** Frames by device and t0 range [from, to), in ledger order, at most `limit` (default 1000). */
  async frames(q: { deviceId?: string; from?: number; to?: number; limit?: number } = {}): Promise<FrameInfo[]> {
    const limit = q.limit ?? 1000
    const from = q.from ?? -Infinity
    const to = q.to ?? Infinity
    const out: FrameInfo[] = []
    const candidates = q.deviceId !== undefined ? (this.devices.get(q.deviceId)?.leaves ?? []) : null
    const n = candidates ? candidates.length : this.tree.size
    for (let j = 0; j < n && out.length < limit; j++) {
      const i = candidates ? candidates[j] : j
      if (this.kind.arr[i] === KIND_CONSENT) continue
      const t = this.time.arr[i]
      if (t >= from && t < to) out.push(await this.frameAt(i))
    }
    return out
  }

  /** Block containing leaf i (binary search on firstLeaf), or -1 if still pending. */
  blockOf(i: number): number {
    let lo = 0
    let hi = this.blocks.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const h = this.blocks[mid].header
      if (i < h.firstLeaf) hi = mid - 1
      else if (i >= h.logSize) lo = mid + 1
      else return mid
    }
    return -1
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
      const k = this.kind.arr[i]
      if (k === KIND_FRAME) {
        const f = await this.frameAt(i)
        if (f.bytes) bundle.leaf.bytes = Buffer.from(f.bytes).toString('base64')
      } else if (k === KIND_CONSENT) {
        await this.store.sync()
        bundle.leaf.bytes = decodeConsentRecord(this.store.readBody(this.seg.arr[i], this.off.arr[i])).record.toString('base64')
      }
    }
    return bundle
  }

  /** Synchronous proof without frame bytes (bench, sync). */
  proofAt(i: number, bi = this.blockOf(i)): ProofBundle {
    const b = this.blocks[bi]
    const first = b.header.firstLeaf
    const cache = this.blockCaches[bi]
    const src: LeafSource = { leaf: (j) => this.tree.leaf(first + j), subtree: (s, n) => cache.get(s, n) }
    const k = this.kind.arr[i]
    return {
      v: 1,
      leaf: {
        hash: toHex(this.tree.leaf(i)),
        index: i,
        kind: k === KIND_FRAME ? 'frame' : k === KIND_CONSENT ? 'consent' : 'pruned',
        ...(k !== KIND_CONSENT ? { deviceId: this.deviceNames[this.devOf.arr[i]], seq: this.seqs.arr[i], t0: this.time.arr[i] } : {}),
      },
      block: { header: toHex(b.headerBytes), signature: toHex(b.signature), hash: toHex(b.hash), witnesses: b.witnesses.map((w) => ({ publicKey: toHex(w.publicKey), signature: toHex(w.signature) })) },
      inBlock: { index: i - first, size: b.header.leafCount, path: inclusionProof(hasher, src, i - first, b.header.leafCount).map(toHex) },
      inLog: { index: i, size: b.header.logSize, path: this.tree.inclusion(i, b.header.logSize).map(toHex) },
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
    const b = this.blocks[height]
    if (!b) return undefined
    await this.store.sync()
    const leaves: string[] = []
    for (let i = b.header.firstLeaf; i < b.header.logSize; i++) {
      leaves.push(this.store.readBody(this.seg.arr[i], this.off.arr[i]).toString('base64'))
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
    if (header.height !== this.blocks.length) throw new LedgerError(`block ${header.height}: expected height ${this.blocks.length}`, 'block')
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
    const prev = this.blocks.length ? this.blocks[this.blocks.length - 1].hash : ZERO_HASH
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
    const b = this.acceptBlock(headerBytes, signature, [])
    writes.push(this.store.append(encodeBlockRecord(headerBytes, signature)).durable)
    this.store.maybeRoll()
    for (const w of witnesses) {
      try {
        if (this.attachWitness(header.height, w.publicKey, w.signature)) writes.push(this.store.append(encodeWitnessRecord(header.height, w.publicKey, w.signature)).durable)
      } catch {
        /* an invalid witness signature is dropped, the block itself is fine */
      }
    }
    await Promise.all(writes)
    this.emitBlock(b)
    return b
  }

  /** Signs block `height` as a witness with `key`; returns the signature. */
  witnessSign(height: number, key: { privateKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
    const b = this.blocks[height]
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
    const active = this.store.activeSegment
    // Group leaves that still have payloads by segment, for closed segments only.
    const bySeg = new Map<number, number[]>()
    for (let i = 0; i < this.tree.size; i++) {
      if (this.kind.arr[i] !== KIND_FRAME) continue
      const s = this.seg.arr[i]
      if (s >= active || this.time.arr[i] >= cutoff) continue
      let l = bySeg.get(s)
      if (!l) bySeg.set(s, (l = []))
      l.push(i)
    }
    let pruned = 0
    for (const [s, leaves] of bySeg) {
      const data = await readFile(join(this.opts.dir, segName(s)))
      const parsed = parseSegment(s, data)
      if (parsed.damage) throw new StorageError(`${segName(s)}: ${parsed.damage.reason} at offset ${parsed.damage.offset}; not pruning`)
      const victims = new Map(leaves.map((i) => [this.off.arr[i], i]))
      const bodies: Uint8Array[] = []
      const newOff = new Map<number, number>() // old offset -> new offset
      let pos = 0
      for (const r of parsed.records) {
        const i = victims.get(r.offset)
        const body = i !== undefined ? encodePrunedFrame(decodeFrameLike(r.body), this.tree.leaf(i)) : r.body
        newOff.set(r.offset, pos)
        bodies.push(body)
        pos += 8 + body.length
      }
      await this.store.replaceSegment(s, bodies)
      for (let i = 0; i < this.tree.size; i++) if (this.seg.arr[i] === s) this.off.set(i, newOff.get(this.off.arr[i])!)
      for (const i of leaves) this.kind.set(i, KIND_PRUNED)
      pruned += leaves.length
    }
    if (pruned) this.log(`ledger: retention pruned ${pruned} frame payloads older than ${this.opts.retentionDays} days in ${bySeg.size} segment(s)`)
    return { pruned, segments: bySeg.size }
  }

  /** Flushes everything (cutting a final block if producer) and closes. Nothing acknowledged is lost. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.timer) clearInterval(this.timer)
    if (this.pruneTimer) clearInterval(this.pruneTimer)
    if (this.key && this.tree.size > this.pendingStart) await this.cutBlock()
    this.closed = true
    await this.store.close()
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
  const l = new Ledger({ dir, producerPublicKey: meta.producerPublicKey, producerId: meta.producerId, readOnly: true, log: opts.log ?? (() => {}) })
  await l.init()
  return l
}

/** Opens (creating) a ledger in `opts.dir`, recovering from a torn tail. */
export async function openLedger(opts: LedgerOptions): Promise<Ledger> {
  const l = new Ledger(opts)
  await l.init()
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
