/**
 * Proofs out of the ledger: the self-contained bundle for one leaf (its path in its
 * block and in the whole log, with the signed header; checked offline by
 * proof-check.ts) and RFC 9162 consistency proofs between log sizes.
 */
import { hasher } from './crypto.ts'
import { inclusionProof, rootFromInclusionProof, bytesEqual, type LeafSource } from './merkle.ts'
import { blockNodeSource } from './tree-index.ts'
import { decodeConsentRecord, decodeAlarmRecord } from './records.ts'
import { KIND_FRAME, KIND_CONSENT, KIND_ALARM, isFrameKind, kindName } from './leaf.ts'
import { indexOf, kindOf, readLeafBody } from './leaf-index.ts'
import { getBlock, blockOf, witnessesHex } from './block-index.ts'
import { indexDamaged } from './checkpoint.ts'
import { cutBlock } from './chain.ts'
import { frameAt } from './frame-query.ts'
import { LedgerError, type ProofBundle } from './types.ts'
import type { LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

/**
 * A self-contained, JSON-able proof for a leaf: its path in its block and in the whole
 * log at that block, plus the signed header. Cuts a block first if the leaf is pending.
 */
export async function proof(s: LedgerState, leafHash: Uint8Array | string, opts: { includeBytes?: boolean }): Promise<ProofBundle> {
  const i = indexOf(s, leafHash)
  if (i < 0) throw new LedgerError(`no leaf with hash ${typeof leafHash === 'string' ? leafHash : toHex(leafHash)}`, 'not-found')
  let bi = blockOf(s, i)
  if (bi < 0) {
    if (!s.key) throw new LedgerError(`leaf ${i} is not in a block yet`, 'not-found')
    await cutBlock(s)
    bi = blockOf(s, i)
  }
  const bundle = proofAt(s, i, bi)
  if (opts.includeBytes !== false) {
    const k = kindOf(s, i)
    if (k === KIND_FRAME) {
      const f = await frameAt(s, i)
      if (f.bytes) bundle.leaf.bytes = Buffer.from(f.bytes).toString('base64')
    } else if (k === KIND_CONSENT) {
      await s.store.settled()
      bundle.leaf.bytes = decodeConsentRecord(readLeafBody(s, i)).record.toString('base64')
    } else if (k === KIND_ALARM) {
      await s.store.settled()
      bundle.leaf.bytes = decodeAlarmRecord(readLeafBody(s, i)).event.toString('base64')
    }
  }
  return bundle
}

/** Synchronous proof without frame bytes (bench, sync). */
export function proofAt(s: LedgerState, i: number, bi: number): ProofBundle {
  const b = getBlock(s, bi)
  if (!b) throw new LedgerError(`leaf ${i} is not in a block`, 'not-found')
  const first = b.header.firstLeaf
  const count = b.header.leafCount
  const nodesStart = s.idx.blocks.get(bi).readDoubleLE(24)
  const src: LeafSource = { leaf: (j) => s.tree.leaf(first + j), subtree: blockNodeSource(count, (j) => s.idx.bnodes.get(nodesStart + j)) }
  const r = s.idx.loc.get(i)
  const k = r[0]
  const leafHash = new Uint8Array(s.tree.leaf(i))
  const inBlock = inclusionProof(hasher, src, i - first, count).map((x) => new Uint8Array(x))
  const inLog = s.tree.inclusion(i, b.header.logSize).map((x) => new Uint8Array(x))
  // The index files are derived data: check both paths against the signed roots
  // (O(log n) hashes) so a damaged index can never produce a wrong proof.
  if (!bytesEqual(rootFromInclusionProof(hasher, i - first, count, leafHash, inBlock), b.header.blockRoot) || !bytesEqual(rootFromInclusionProof(hasher, i, b.header.logSize, leafHash, inLog), b.header.logRoot)) {
    throw indexDamaged(s, `proof of leaf ${i} does not reach block ${bi}'s roots`)
  }
  return {
    v: 1,
    leaf: {
      hash: toHex(leafHash),
      index: i,
      kind: kindName(k),
      ...(isFrameKind(k) ? { deviceId: s.deviceNames[r.readUInt32LE(32)], seq: r.readDoubleLE(24), t0: r.readDoubleLE(16) } : {}),
    },
    block: { header: toHex(b.headerBytes), signature: toHex(b.signature), hash: toHex(b.hash), witnesses: witnessesHex(b) },
    inBlock: { index: i - first, size: count, path: inBlock.map(toHex) },
    inLog: { index: i, size: b.header.logSize, path: inLog.map(toHex) },
    logRoot: toHex(b.header.logRoot),
  }
}

/** RFC 9162 consistency proof between two log sizes (hex nodes). */
export function consistency(s: LedgerState, size1: number, size2: number): string[] {
  if (size2 > s.tree.size) throw new LedgerError(`size2 ${size2} > log size ${s.tree.size}`, 'invalid')
  return s.tree.consistency(size1, size2).map(toHex)
}
