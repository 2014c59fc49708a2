/**
 * Growing the log: appending frame leaves, cutting a signed block over the pending
 * leaves (every blockIntervalMs, at blockMaxLeaves, or on demand), accepting a block
 * into the chain (cut here, replayed on open, or imported from the producer) and
 * marking blocks durable, which lets the index checkpoint move.
 */
import { hasher, sha256, leafHashFast, ed25519Sign, ed25519Verify } from './crypto.ts'
import { rangeRoot, bytesEqual } from './merkle.ts'
import { encodeHeader, decodeHeader, blockHash, blockToBeSigned, ZERO_HASH, type BlockHeader } from './block.ts'
import { encodeFrameSealable, encodeBlockRecord, type FrameMeta } from './records.ts'
import { KIND_FRAME } from './leaf.ts'
import { addLeaf, hasFrame, timeOf } from './leaf-index.ts'
import { registerBlock } from './block-index.ts'
import { commitIndex } from './checkpoint.ts'
import { LedgerError, type StoredBlock } from './types.ts'
import { checkOpen, type LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

/**
 * Appends a frame's exact bytes as a leaf. Resolves once the bytes are durable
 * (fsync, shared with concurrent appends). Refuses a (deviceId, seq) seen before.
 */
export async function appendFrame(s: LedgerState, frameBytes: Uint8Array, meta: FrameMeta): Promise<{ leafIndex: number; leafHash: Uint8Array }> {
  checkOpen(s)
  if (!s.key) throw new LedgerError('replica: frames arrive only through synced blocks', 'readonly')
  if (!(frameBytes instanceof Uint8Array) || frameBytes.length === 0) throw new LedgerError(`frameBytes: expected non-empty Uint8Array, got ${frameBytes instanceof Uint8Array ? 'empty' : typeof frameBytes}`, 'invalid')
  if (!meta || typeof meta.deviceId !== 'string') throw new LedgerError('meta.deviceId: expected a string', 'invalid')
  if (hasFrame(s, meta.deviceId, meta.seq)) throw new LedgerError(`duplicate frame: device ${meta.deviceId} seq ${meta.seq} is already in the ledger`, 'duplicate')
  let rec
  try {
    rec = encodeFrameSealable(meta, frameBytes)
  } catch (e) {
    throw new LedgerError((e as Error).message, 'invalid')
  }
  const h = leafHashFast(frameBytes)
  const w = s.store.appendSealed(rec)
  const leafIndex = addLeaf(s, KIND_FRAME, h, meta, w.seg, w.offset)
  cutIfFull(s)
  await w.durable
  return { leafIndex, leafHash: h }
}

/** Starts cutting a block (in the background) once blockMaxLeaves leaves are pending. */
export function cutIfFull(s: LedgerState): void {
  if (s.tree.size - s.pendingStart >= s.cfg.blockMaxLeaves) void cutBlock(s).catch(() => {})
}

/** Cuts a block over all pending leaves now (producer only); resolves when it is durable. */
export function cutBlock(s: LedgerState): Promise<StoredBlock | undefined> {
  if (!s.key) throw new LedgerError('only the producer cuts blocks', 'readonly')
  const count = s.tree.size - s.pendingStart
  if (count === 0) return Promise.resolve(undefined)
  let tMin = Infinity
  let tMax = 0
  for (let i = s.pendingStart; i < s.tree.size; i++) {
    const t = timeOf(s, i)
    if (t < tMin) tMin = t
    if (t > tMax) tMax = t
  }
  const height = s.blockCount
  const { src, cache } = s.tree.blockSource(s.pendingStart)
  for (let i = 1; i <= count; i++) cache.added(i)
  const header: BlockHeader = {
    v: 1,
    height,
    prev: height === 0 ? ZERO_HASH : s.lastBlock!.hash,
    blockRoot: rangeRoot(hasher, src, 0, count),
    firstLeaf: s.pendingStart,
    leafCount: count,
    logSize: s.tree.size,
    logRoot: s.tree.root(),
    tMin,
    tMax,
    cutAt: s.cfg.now(),
    producerId: s.cfg.producerId,
  }
  const headerBytes = encodeHeader(header)
  const signature = ed25519Sign(s.key, blockToBeSigned(headerBytes))
  const b: StoredBlock = { header, headerBytes, signature, hash: blockHash(sha256, headerBytes), witnesses: [] }
  const w = s.store.append(encodeBlockRecord(headerBytes, signature))
  registerBlock(s, b, cache, w.seg, w.offset)
  s.unflushed.set(height, b)
  s.store.maybeRoll()
  return w.durable.then(() => {
    s.unflushed.delete(height)
    markDurable(s, height)
    s.blockListeners.emit(b)
    return b
  })
}

/** Verifies a block against the current state (links, roots, signature) and appends it in memory. */
export function acceptBlock(s: LedgerState, headerBytes: Uint8Array, signature: Uint8Array, witnesses: StoredBlock['witnesses'], seg: number, off: number): StoredBlock {
  const header = decodeHeader(headerBytes)
  const height = s.blockCount
  const prev = height === 0 ? ZERO_HASH : s.lastBlock!.hash
  if (header.height !== height) throw new LedgerError(`block ${header.height}: expected height ${height}`, 'block')
  if (!bytesEqual(header.prev, prev)) throw new LedgerError(`block ${height}: prev ${toHex(header.prev)} does not link to block ${height - 1} (${toHex(prev)})`, 'block')
  if (header.firstLeaf !== s.pendingStart) throw new LedgerError(`block ${height}: firstLeaf ${header.firstLeaf}, expected ${s.pendingStart}`, 'block')
  if (header.logSize !== s.tree.size) throw new LedgerError(`block ${height}: logSize ${header.logSize} but ${s.tree.size} leaves precede it`, 'block')
  if (header.leafCount === 0) throw new LedgerError(`block ${height}: empty block`, 'block')
  if (!ed25519Verify(s.producerPublicKey, blockToBeSigned(headerBytes), signature)) throw new LedgerError(`block ${height}: bad producer signature`, 'block')
  const { src, cache } = s.tree.blockSource(header.firstLeaf)
  for (let i = 1; i <= header.leafCount; i++) cache.added(i)
  const root = rangeRoot(hasher, src, 0, header.leafCount)
  if (!bytesEqual(root, header.blockRoot)) throw new LedgerError(`block ${height}: blockRoot ${toHex(header.blockRoot)} but leaves hash to ${toHex(root)}`, 'block')
  const logRoot = s.tree.root()
  if (!bytesEqual(logRoot, header.logRoot)) throw new LedgerError(`block ${height}: logRoot ${toHex(header.logRoot)} but log hashes to ${toHex(logRoot)}`, 'block')
  const b: StoredBlock = { header, headerBytes, signature, hash: blockHash(sha256, headerBytes), witnesses: [...witnesses] }
  registerBlock(s, b, cache, seg, off)
  return b
}

/** Block `height` is durable: the index checkpoint may now cover it. */
export function markDurable(s: LedgerState, height: number): void {
  if (height + 1 > s.durableBlocks) s.durableBlocks = height + 1
  // The index is derived data: a failed write only means the next open re-scans more.
  const fail = (e: unknown): void => s.cfg.log(`ledger: index commit failed: ${(e as Error).message}`)
  try {
    commitIndex(s)?.catch(fail)
  } catch (e) {
    fail(e)
  }
}

/** Producer: cut a block every blockIntervalMs while leaves are pending. */
export function startBlockTimer(s: LedgerState): void {
  s.blockTimer = setInterval(() => {
    // After a failed write (a full disk) nothing more is appended until the ledger reopens
    if (s.tree.size === s.pendingStart || s.store.fault) return
    try {
      cutBlock(s).catch((e: Error) => s.cfg.log(`ledger: block not stored: ${e.message}`))
    } catch (e) {
      s.cfg.log(`ledger: block not cut: ${(e as Error).message}`)
    }
  }, Math.max(1, s.cfg.blockIntervalMs))
  // Referenced on purpose: pending leaves must get their block; close() stops it.
}
