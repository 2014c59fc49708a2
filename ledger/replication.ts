/**
 * Replication: exporting a block with its leaves' record bodies, importing one on a
 * replica (fully verified before anything is stored), witness co-signatures, and the
 * leaves an interrupted import left without a block.
 */
import { hasher, ed25519PrivateKey, ed25519Sign, ed25519Verify } from './crypto.ts'
import { rangeRoot, bytesEqual } from './merkle.ts'
import { decodeHeader, blockToBeSigned, witnessToBeSigned, ZERO_HASH } from './block.ts'
import { encodeBlockRecord, encodeWitnessRecord } from './records.ts'
import { decodeLeafRecord, type DecodedLeaf } from './leaf.ts'
import { addLeaf, locationOf, readLeafBody } from './leaf-index.ts'
import { getBlock, witnessesHex } from './block-index.ts'
import { acceptBlock, markDurable } from './chain.ts'
import { ConsentStaging, applyConsent } from './consent-log.ts'
import { LedgerError, tryFromHex, type BlockTransfer, type StoredBlock } from './types.ts'
import { checkOpen, type LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

/** A block with its leaves' record bodies, for sending to a peer. */
export async function exportBlock(s: LedgerState, height: number): Promise<BlockTransfer | undefined> {
  const b = getBlock(s, height)
  if (!b) return undefined
  await s.store.sync()
  const leaves: string[] = []
  for (let i = b.header.firstLeaf; i < b.header.logSize; i++) leaves.push(readLeafBody(s, i).toString('base64'))
  return {
    header: toHex(b.headerBytes),
    signature: toHex(b.signature),
    witnesses: witnessesHex(b),
    leaves,
  }
}

/**
 * Fully verifies a block received from a peer (every leaf re-hashed, roots, link,
 * producer signature) and stores it with its leaves. Throws LedgerError('block') and
 * changes nothing if anything is wrong. Replicas only.
 */
export async function importBlock(s: LedgerState, t: BlockTransfer): Promise<StoredBlock> {
  checkOpen(s)
  if (s.key) throw new LedgerError('the producer does not import blocks', 'readonly')
  if (s.tree.size !== s.pendingStart) throw new LedgerError('replica has leaves outside blocks', 'block')
  const headerBytes = tryFromHex(t.header)
  const signature = tryFromHex(t.signature)
  if (!headerBytes || !signature || !Array.isArray(t.leaves)) throw new LedgerError('malformed block transfer', 'block')
  const header = decodeHeader(headerBytes)
  if (t.leaves.length !== header.leafCount) throw new LedgerError(`block ${header.height}: ${t.leaves.length} leaves sent, header says ${header.leafCount}`, 'block')
  if (header.height !== s.blockCount) throw new LedgerError(`block ${header.height}: expected height ${s.blockCount}`, 'block')
  if (!ed25519Verify(s.producerPublicKey, blockToBeSigned(headerBytes), signature)) throw new LedgerError(`block ${header.height}: bad producer signature`, 'block')
  // Decode and hash every leaf before touching any state.
  const parsed: { body: Buffer; leaf: DecodedLeaf }[] = []
  const staged = new ConsentStaging(s.consent)
  for (const [j, b64] of t.leaves.entries()) {
    const body = Buffer.from(b64, 'base64')
    try {
      const leaf = decodeLeafRecord(body)
      if (!leaf) throw new Error(`record type ${body[0]} is not a leaf`)
      if (leaf.consent) staged.check(leaf.consent)
      parsed.push({ body, leaf })
    } catch (e) {
      throw new LedgerError(`block ${header.height} leaf ${j}: ${(e as Error).message}`, 'block')
    }
  }
  // Roots over the received hashes, computed on a scratch copy of the tree state.
  const leafHashes = parsed.map((p) => p.leaf.hash)
  const root = rangeRoot(hasher, { leaf: (j) => leafHashes[j] }, 0, leafHashes.length)
  if (!bytesEqual(root, header.blockRoot)) throw new LedgerError(`block ${header.height}: blockRoot mismatch (leaves hash to ${toHex(root)})`, 'block')
  const range = s.tree.cloneRange()
  for (const h of leafHashes) range.append(h)
  if (!bytesEqual(range.root(), header.logRoot) || header.logSize !== s.tree.size + leafHashes.length) throw new LedgerError(`block ${header.height}: logRoot/logSize do not extend our log`, 'block')
  const prev = s.lastBlock ? s.lastBlock.hash : ZERO_HASH
  if (!bytesEqual(header.prev, prev) || header.firstLeaf !== s.tree.size) throw new LedgerError(`block ${header.height}: does not link to our head (fork)`, 'block')
  // All checks passed: store leaves, then the block record.
  const writes: Promise<void>[] = []
  for (const { body, leaf } of parsed) {
    const w = s.store.append(body)
    writes.push(w.durable)
    const i = addLeaf(s, leaf.kind, leaf.hash, leaf.meta, w.seg, w.offset, leaf.t)
    if (leaf.consent) s.consentListeners.emit(applyConsent(s, leaf.consent, i))
  }
  const witnesses = (t.witnesses ?? []).map((w) => ({ publicKey: tryFromHex(w.publicKey) ?? new Uint8Array(0), signature: tryFromHex(w.signature) ?? new Uint8Array(0) }))
  const bw = s.store.append(encodeBlockRecord(headerBytes, signature))
  writes.push(bw.durable)
  const b = acceptBlock(s, headerBytes, signature, [], bw.seg, bw.offset)
  s.unflushed.set(header.height, b)
  s.store.maybeRoll()
  for (const w of witnesses) {
    try {
      if (attachWitness(s, header.height, w.publicKey, w.signature)) writes.push(s.store.append(encodeWitnessRecord(header.height, w.publicKey, w.signature)).durable)
    } catch {
      /* an invalid witness signature is dropped, the block itself is fine */
    }
  }
  await Promise.all(writes)
  s.unflushed.delete(header.height)
  markDurable(s, header.height)
  s.blockListeners.emit(b)
  return b
}

/** Signs block `height` as a witness with `key`; returns the signature. */
export function witnessSign(s: LedgerState, height: number, key: { privateKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  const b = getBlock(s, height)
  if (!b) throw new LedgerError(`no block ${height}`, 'not-found')
  return ed25519Sign(ed25519PrivateKey(key.privateKey, key.publicKey), witnessToBeSigned(b.headerBytes))
}

/** Stores a peer's co-signature of block `height` after checking it; false if already held. */
export async function addWitness(s: LedgerState, height: number, publicKey: Uint8Array, signature: Uint8Array): Promise<boolean> {
  checkOpen(s)
  if (!attachWitness(s, height, publicKey, signature)) return false
  await s.store.append(encodeWitnessRecord(height, publicKey, signature)).durable
  return true
}

/** Checks a co-signature and attaches it to its block in memory (queued for the index); false if already held. */
export function attachWitness(s: LedgerState, height: number, pub: Uint8Array, sig: Uint8Array): boolean {
  const b = getBlock(s, height)
  if (!b) throw new LedgerError(`witness for unknown block ${height}`, 'block')
  if (!ed25519Verify(pub, witnessToBeSigned(b.headerBytes), sig)) throw new LedgerError(`block ${height}: bad witness signature`, 'block')
  if (b.witnesses.some((w) => bytesEqual(w.publicKey, pub))) return false
  b.witnesses.push({ publicKey: pub, signature: sig })
  s.tailWitness.push([height, pub, sig])
  return true
}

/** For a writable replica: where leaves not covered by any block start, if any. */
export function replicaOrphans(s: LedgerState): { seg: number; offset: number; count: number } | undefined {
  if (s.key || s.cfg.readOnly || s.tree.size === s.pendingStart) return undefined
  const at = locationOf(s, s.pendingStart)
  return { seg: at.seg, offset: at.offset, count: s.tree.size - s.pendingStart }
}
