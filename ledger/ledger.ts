/**
 * The ledger: durable leaves (frames, consent records, alarm events), blocks cut every T ms or N
 * leaves, proofs, consent state, retention, replication. This file is the entry point:
 * `openLedger` / `openLedgerReadOnly` and the `Ledger` API, which hands each call to the
 * module of its concern, all sharing one LedgerState (state.ts):
 *   chain.ts (appends, blocks), consent-log.ts, frame-query.ts, proofs.ts,
 *   retention.ts, replication.ts, leaf-index.ts / block-index.ts / checkpoint.ts
 *   (indexes), open.ts (load, replay, close).
 * I/O lives in store.ts and index-store.ts; hashing and proofs in merkle.ts / tree-index.ts.
 * API and formats: docs/ledger.md.
 */
import { unlink, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { LeafTree } from './tree-index.ts'
import { StorageError, listSegments, segName } from './store.ts'
import { IndexStore } from './index-store.ts'
import { readMeta } from './meta.ts'
import type { BlockHeader } from './block.ts'
import type { FrameMeta } from './records.ts'
import { ConsentError, type ConsentChange, type ConsentState } from './consent.ts'
import { hasFrame, indexOf } from './leaf-index.ts'
import { getBlock, blockOf, head } from './block-index.ts'
import { flushIndex } from './checkpoint.ts'
import { appendFrame, cutBlock } from './chain.ts'
import { appendConsent } from './consent-log.ts'
import { appendAlarm, alarmEvents } from './alarm-log.ts'
import type { AlarmEvent } from './alarm-record.ts'
import { getFrame, frames, frameAt, frameLeaves } from './frame-query.ts'
import { proof, proofAt, consistency } from './proofs.ts'
import { prune } from './retention.ts'
import { exportBlock, importBlock, witnessSign, addWitness, replicaOrphans } from './replication.ts'
import { loadLedger, closeLedger, IndexUntrusted } from './open.ts'
import { adoptListeners, checkOpen, type LedgerState } from './state.ts'
import { LedgerError, type LedgerOptions, type StoredBlock, type FrameInfo, type ProofBundle, type BlockTransfer } from './types.ts'

export { ConsentError, StorageError, LedgerError }
export type { LedgerOptions, LeafKind, StoredBlock, FrameInfo, ProofBundle, BlockTransfer } from './types.ts'

export class Ledger {
  readonly producerPublicKey: Uint8Array

  /** @internal use openLedger(); `reopen` opens the same directory afresh (recover()). */
  constructor(private s: LedgerState, private readonly reopen?: () => Promise<Ledger>) {
    this.producerPublicKey = s.producerPublicKey
  }

  /** Leaf hashes and subtree roots (in the index files; see tree-index.ts, index-store.ts). */
  get tree(): LeafTree {
    return this.s.tree
  }

  get consent(): ConsentState {
    return this.s.consent
  }

  /** Why writes stopped (a failed write or fsync: a full disk), or undefined while they work. */
  get storageFault(): string | undefined {
    const f = this.s.store.fault
    return f ? f.message : undefined
  }

  /**
   * After a write failure: opens the directory afresh, as after a crash (a torn tail is cut;
   * records fully written before the failure stay, though never acknowledged: a board's
   * retransmission then finds them and is acknowledged as a duplicate), and carries on with
   * that state and this ledger's listeners. Reads keep working on the old state until the
   * new one is open; if opening fails (still no space), nothing changes and it may be retried.
   */
  async recover(): Promise<void> {
    const old = this.s
    if (!old.store.fault) return
    if (!this.reopen) throw new LedgerError('recover: only a ledger opened with openLedger() can reopen', 'invalid')
    const fresh = (await this.reopen()).s
    if (old.blockTimer) clearInterval(old.blockTimer)
    if (old.pruneTimer) clearInterval(old.pruneTimer)
    old.closed = true
    await old.store.abandon()
    old.idx.close()
    adoptListeners(old, fresh)
    this.s = fresh
  }

  // ------------------------------------------------------------------ appends and blocks

  /**
   * Appends a frame's exact bytes as a leaf. Resolves once the bytes are durable
   * (fsync, shared with concurrent appends). Refuses a (deviceId, seq) seen before.
   */
  appendFrame(frameBytes: Uint8Array, meta: FrameMeta): Promise<{ leafIndex: number; leafHash: Uint8Array }> {
    return appendFrame(this.s, frameBytes, meta)
  }

  /**
   * Duplicate detection: the in-memory tail (not yet indexed), then a seq above the
   * device's highest indexed seq (the usual case: no lookup), then the SQLite index.
   */
  hasFrame(deviceId: string, seq: number): boolean {
    // After a write failure the in-memory state holds leaves that never reached the disk:
    // "already stored" could acknowledge a frame the ledger does not have.
    const fault = this.s.store.fault
    if (fault) throw fault
    return hasFrame(this.s, deviceId, seq)
  }

  /**
   * Appends a patient-signed consent record (see consent.ts). Validates signature and
   * ordering first; resolves when durable, after the change listeners have run.
   */
  appendConsent(recordBytes: Uint8Array): Promise<{ leafIndex: number; leafHash: Uint8Array; change: ConsentChange }> {
    return appendConsent(this.s, recordBytes)
  }

  /** Appends an alarm event (alarm-record.ts: its deterministic CBOR); resolves once durable. */
  appendAlarm(eventBytes: Uint8Array): Promise<{ leafIndex: number; leafHash: Uint8Array }> {
    return appendAlarm(this.s, eventBytes)
  }

  /** Every alarm event in the log with its leaf index, oldest first (to rebuild alarms on start). */
  alarmEvents(): Promise<{ leafIndex: number; event: AlarmEvent }[]> {
    return alarmEvents(this.s)
  }

  /** Cuts a block over all pending leaves now (producer only); resolves when it is durable. */
  cutBlock(): Promise<StoredBlock | undefined> {
    return cutBlock(this.s)
  }

  /** Called synchronously on every consent change (grant or revoke); returns an unsubscribe function. */
  onConsent(cb: (c: ConsentChange) => void): () => void {
    return this.s.consentListeners.add(cb)
  }

  /** Called once each new block is durable; returns an unsubscribe function. */
  onBlock(cb: (b: StoredBlock) => void): () => void {
    return this.s.blockListeners.add(cb)
  }

  // ------------------------------------------------------------------ reads

  get size(): number {
    return this.s.tree.size
  }

  head(): { height: number; hash: string; logSize: number; logRoot: string; pendingLeaves: number; header?: BlockHeader } {
    return head(this.s)
  }

  /** True when this process holds the producer key (it cuts blocks, never imports them). */
  get producerIsLocal(): boolean {
    return this.s.key !== undefined
  }

  get height(): number {
    return this.s.blockCount - 1
  }

  /** Block `height`: the head, a recent one (LRU) or read back from its segment. */
  getBlock(height: number): StoredBlock | undefined {
    return getBlock(this.s, height)
  }

  /** The leaf index of a leaf hash (hex or bytes), or -1: the SQLite index, then the unindexed tail. */
  indexOf(leafHash: Uint8Array | string): number {
    return indexOf(this.s, leafHash)
  }

  /** A frame by its leaf hash (hex or bytes); undefined if unknown or not a frame. */
  getFrame(leafHash: Uint8Array | string): Promise<FrameInfo | undefined> {
    return getFrame(this.s, leafHash)
  }

  /** Frames by device and t0 range [from, to), in ledger order, at most `limit` (default 1000). */
  frames(q: { deviceId?: string; from?: number; to?: number; limit?: number } = {}): Promise<FrameInfo[]> {
    return frames(this.s, q)
  }

  /** One page of a device's frame leaves in a t0 range, locators only (see frame-query.ts): for reading a long range a few frames at a time. */
  frameLeaves(q: { deviceId: string; from: number; to: number; cursor?: number; scan?: number }): { leaves: { leafIndex: number; t0: number }[]; next: number } {
    return frameLeaves(this.s, q)
  }

  /** The frame at leaf i (bytes null once retention pruned them); i must be a frame leaf below `size`. */
  frameAt(i: number): Promise<FrameInfo> {
    return frameAt(this.s, i)
  }

  /** Block containing leaf i (binary search on firstLeaf in blocks.bin), or -1 if still pending. */
  blockOf(i: number): number {
    return blockOf(this.s, i)
  }

  // ------------------------------------------------------------------ proofs

  /**
   * A self-contained, JSON-able proof for a leaf: its path in its block and in the whole
   * log at that block, plus the signed header. Cuts a block first if the leaf is pending.
   */
  proof(leafHash: Uint8Array | string, opts: { includeBytes?: boolean } = {}): Promise<ProofBundle> {
    return proof(this.s, leafHash, opts)
  }

  /** Synchronous proof without frame bytes (bench, sync). */
  proofAt(i: number, bi = this.blockOf(i)): ProofBundle {
    return proofAt(this.s, i, bi)
  }

  /** RFC 9162 consistency proof between two log sizes (hex nodes). */
  consistency(size1: number, size2: number): string[] {
    return consistency(this.s, size1, size2)
  }

  // ------------------------------------------------------------------ peer sync support

  /** A block with its leaves' record bodies, for sending to a peer. */
  exportBlock(height: number): Promise<BlockTransfer | undefined> {
    return exportBlock(this.s, height)
  }

  /**
   * Fully verifies a block received from a peer (every leaf re-hashed, roots, link,
   * producer signature) and stores it with its leaves. Throws LedgerError('block') and
   * changes nothing if anything is wrong. Replicas only.
   */
  importBlock(t: BlockTransfer): Promise<StoredBlock> {
    return importBlock(this.s, t)
  }

  /** Signs block `height` as a witness with `key`; returns the signature. */
  witnessSign(height: number, key: { privateKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
    return witnessSign(this.s, height, key)
  }

  /** Stores a peer's co-signature of block `height` after checking it; false if already held. */
  addWitness(height: number, publicKey: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return addWitness(this.s, height, publicKey, signature)
  }

  /** @internal For a writable replica: where leaves not covered by any block start, if any. */
  replicaOrphans(): { seg: number; offset: number; count: number } | undefined {
    return replicaOrphans(this.s)
  }

  // ------------------------------------------------------------------ retention and index

  /**
   * Replaces frame payloads with t0 older than retentionDays by their leaf hash, in
   * closed segments (rewritten atomically). Leaf hashes and headers stay: proofs still verify.
   */
  prune(nowMs = this.s.cfg.now()): Promise<{ pruned: number; segments: number }> {
    return prune(this.s, nowMs)
  }

  /**
   * Writes the index checkpoint now over every durable block (normally done after a
   * durable block at most every indexCommitMs, and by close and prune).
   */
  async flushIndex(): Promise<void> {
    checkOpen(this.s)
    await flushIndex(this.s)
  }

  /** Leaves not yet in the on-disk index (held in memory until the next checkpoint). */
  get unindexedLeaves(): number {
    return this.s.tree.size - this.s.indexed
  }

  /** Flushes everything (cutting a final block if producer) and closes. Nothing acknowledged is lost. */
  close(): Promise<void> {
    return closeLedger(this.s)
  }
}

/** Opens an existing ledger directory for reading only; the producer key comes from its ledger.json. */
export async function openLedgerReadOnly(dir: string, opts: { log?: (msg: string) => void } = {}): Promise<Ledger> {
  const meta = await readMeta(dir)
  if (!meta) throw new LedgerError(`${dir} is not a ledger directory (no ledger.json)`, 'not-found')
  const o: LedgerOptions = { dir, producerPublicKey: meta.producerPublicKey, producerId: meta.producerId, readOnly: true, log: opts.log ?? (() => {}) }
  try {
    return new Ledger(await loadLedger(o))
  } catch (e) {
    if (!(e instanceof IndexUntrusted)) throw e
    // Read-only never repairs: read everything from the segments into memory instead.
    return new Ledger(await loadLedger(o, true, e.claim))
  }
}

/** Opens (creating) a ledger in `opts.dir`, recovering from a torn tail. */
export async function openLedger(opts: LedgerOptions): Promise<Ledger> {
  let s: LedgerState
  try {
    s = await loadLedger(opts)
  } catch (e) {
    if (!(e instanceof IndexUntrusted)) throw e
    ;(opts.log ?? console.error)(`ledger: index in ${join(opts.dir, 'index')} not trusted (${e.message}); rebuilding it from the segment files`)
    IndexStore.remove(opts.dir)
    s = await loadLedger(opts, false, e.claim)
  }
  const orphan = replicaOrphans(s)
  if (orphan) {
    // A replica stores a block's leaves and then its header in one batch; a crash between
    // them leaves leaves no block covers. They were never acknowledged to anyone (the peer
    // still has them), so they are cut and fetched again.
    await closeLedger(s)
    for (const seg of await listSegments(opts.dir)) if (seg > orphan.seg) await unlink(join(opts.dir, segName(seg)))
    await truncate(join(opts.dir, segName(orphan.seg)), orphan.offset)
    ;(opts.log ?? console.error)(`ledger: replica had ${orphan.count} leaves without a block (interrupted sync); cut them at ${segName(orphan.seg)} offset ${orphan.offset}`)
    return openLedger(opts)
  }
  return new Ledger(s, () => openLedger(opts))
}
