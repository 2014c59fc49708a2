/**
 * The blocks as the ledger reads them back: blocks.bin (one 32-byte record per block:
 * segment u32le @0 and offset f64le @8 of its block record, firstLeaf f64le @16, where
 * its subtree roots start in bnodes.bin f64le @24), the head, a small LRU of recent
 * blocks, and their witness co-signatures.
 */
import { sha256, hasher } from './crypto.ts'
import { bytesEqual } from './merkle.ts'
import { decodeHeader, blockHash, ZERO_HASH, type BlockHeader } from './block.ts'
import { decodeBlockRecord } from './records.ts'
import type { SubtreeCache } from './tree-index.ts'
import { LedgerError, type StoredBlock } from './types.ts'
import type { LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

const BLOCK_LRU = 128

export function blockFromRecord(body: Buffer): StoredBlock {
  const r = decodeBlockRecord(body)
  const headerBytes = new Uint8Array(r.header)
  return { header: decodeHeader(headerBytes), headerBytes, signature: new Uint8Array(r.sig), hash: blockHash(sha256, headerBytes), witnesses: [] }
}

function remember(s: LedgerState, b: StoredBlock): void {
  s.blockLru.set(b.header.height, b)
  if (s.blockLru.size > BLOCK_LRU) s.blockLru.delete(s.blockLru.keys().next().value!)
}

/** Appends a block's blocks.bin record and its subtree roots; it becomes the head. */
export function registerBlock(s: LedgerState, b: StoredBlock, cache: SubtreeCache, seg: number, off: number): void {
  const rec = s.idx.blocks.reserve()
  rec.writeUInt32LE(seg, 0)
  rec.writeDoubleLE(off, 8)
  rec.writeDoubleLE(b.header.firstLeaf, 16)
  rec.writeDoubleLE(s.idx.bnodes.count, 24)
  for (const h of cache.nodes()) s.idx.bnodes.append(h)
  s.lastBlock = b
  s.blockCount++
  s.pendingStart = b.header.logSize
  remember(s, b)
}

/** Witness co-signatures of block `height`: the SQLite index plus those not yet indexed. */
export function witnessesOf(s: LedgerState, height: number): StoredBlock['witnesses'] {
  const w = s.idx.witnesses(height)
  for (const t of s.tailWitness) if (t[0] === height && !w.some((x) => bytesEqual(x.publicKey, t[1]))) w.push({ publicKey: t[1], signature: t[2] })
  return w
}

/** A block's co-signatures as they travel in proofs and block transfers. */
export function witnessesHex(b: StoredBlock): { publicKey: string; signature: string }[] {
  return b.witnesses.map((w) => ({ publicKey: toHex(w.publicKey), signature: toHex(w.signature) }))
}

/** Block `height`: the head, a recent one (LRU) or read back from its segment. */
export function getBlock(s: LedgerState, height: number): StoredBlock | undefined {
  if (!Number.isInteger(height) || height < 0 || height >= s.blockCount) return undefined
  if (s.lastBlock && s.lastBlock.header.height === height) return s.lastBlock
  let b = s.unflushed.get(height) ?? s.blockLru.get(height)
  if (b) return b
  const rec = s.idx.blocks.get(height)
  b = blockFromRecord(s.store.readBody(rec.readUInt32LE(0), rec.readDoubleLE(8)))
  if (b.header.height !== height) throw new LedgerError(`index damaged: blocks.bin entry ${height} points at block ${b.header.height} (rebuilt on next open)`, 'block')
  b.witnesses = witnessesOf(s, height)
  remember(s, b)
  return b
}

/** Block containing leaf i (binary search on firstLeaf in blocks.bin), or -1 if still pending. */
export function blockOf(s: LedgerState, i: number): number {
  if (!(i >= 0 && i < s.pendingStart)) return -1
  let lo = 0
  let hi = s.blockCount - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (s.idx.blocks.get(mid).readDoubleLE(16) <= i) lo = mid
    else hi = mid - 1
  }
  return lo
}

export function head(s: LedgerState): { height: number; hash: string; logSize: number; logRoot: string; pendingLeaves: number; header?: BlockHeader } {
  const b = s.lastBlock
  return {
    height: s.blockCount - 1,
    hash: b ? toHex(b.hash) : toHex(ZERO_HASH),
    logSize: b ? b.header.logSize : 0,
    logRoot: b ? toHex(b.header.logRoot) : toHex(hasher.emptyRoot()),
    pendingLeaves: s.tree.size - s.pendingStart,
    header: b?.header,
  }
}
