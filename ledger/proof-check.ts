/**
 * Offline check of a ProofBundle with nothing but the producer's public key. No Node
 * imports: SHA-256 and Ed25519 verification are injected (node:crypto in the CLI,
 * @noble/hashes + @noble/curves in the dashboard).
 */
import { rfc6962, verifyInclusion, bytesEqual, RootMismatchError, ProofError, type Sha256 } from './merkle.ts'
import { fromHex, toHex } from '../protocol/portable/bytes.ts'
import { decodeHeader, blockToBeSigned, witnessToBeSigned, type BlockHeader } from './block.ts'

export interface ProofCheckDeps {
  sha256: Sha256
  ed25519Verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean
}

export class ProofCheckError extends Error {
  override name = 'ProofCheckError'
}

export interface ProofCheckResult {
  leafIndex: number
  leafHash: string
  height: number
  blockHash: string
  logSize: number
  logRoot: string
  header: BlockHeader
  /** Whether the bundle carried the leaf's bytes and they hash to the leaf. */
  bytesChecked: boolean
  /** Witness public keys (hex) whose co-signatures verified. */
  witnesses: string[]
}

interface BundleLike {
  v: number
  leaf: { hash: string; index: number; bytes?: string }
  block: { header: string; signature: string; hash?: string; witnesses?: { publicKey: string; signature: string }[] }
  inBlock: { index: number; size: number; path: string[] }
  inLog: { index: number; size: number; path: string[] }
  logRoot: string
}

function hex(name: string, s: unknown, len?: number): Uint8Array {
  if (typeof s !== 'string') throw new ProofCheckError(`${name}: expected a hex string, got ${typeof s}`)
  let b: Uint8Array
  try {
    b = fromHex(s)
  } catch {
    throw new ProofCheckError(`${name}: not valid hex`)
  }
  if (len !== undefined && b.length !== len) throw new ProofCheckError(`${name}: expected ${len} bytes, got ${b.length}`)
  return b
}

function b64(s: string): Uint8Array {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const clean = s.replace(/=+$/, '')
  if (!/^[A-Za-z0-9+/]*$/.test(clean)) throw new ProofCheckError('leaf.bytes: not valid base64')
  const out = new Uint8Array(Math.floor((clean.length * 6) / 8))
  let acc = 0
  let bits = 0
  let j = 0
  for (const c of clean) {
    acc = (acc << 6) | abc.indexOf(c)
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[j++] = (acc >> bits) & 0xff
    }
  }
  return out
}

/** Throws ProofCheckError (naming what failed) unless the bundle is a valid proof under `producerKey`. */
export function checkProof(bundle: unknown, producerKey: Uint8Array, deps: ProofCheckDeps): ProofCheckResult {
  const b = bundle as BundleLike
  if (!b || typeof b !== 'object' || b.v !== 1 || !b.leaf || !b.block || !b.inBlock || !b.inLog) throw new ProofCheckError('not a ledger proof bundle (expected v:1 with leaf, block, inBlock, inLog)')
  const h = rfc6962(deps.sha256)
  const headerBytes = hex('block.header', b.block.header)
  let header: BlockHeader
  try {
    header = decodeHeader(headerBytes)
  } catch (e) {
    throw new ProofCheckError((e as Error).message)
  }
  // 1. The producer signed this header.
  if (!deps.ed25519Verify(producerKey, blockToBeSigned(headerBytes), hex('block.signature', b.block.signature, 64))) throw new ProofCheckError(`block ${header.height}: producer signature does not verify with key ${toHex(producerKey)}`)
  const blockHash = toHex(deps.sha256(headerBytes))
  if (b.block.hash !== undefined && b.block.hash !== blockHash) throw new ProofCheckError(`block ${header.height}: stated hash ${b.block.hash} is not SHA-256(header) ${blockHash}`)
  const leaf = hex('leaf.hash', b.leaf.hash, 32)
  // 2. The leaf's bytes, if present, hash to the leaf.
  let bytesChecked = false
  if (typeof b.leaf.bytes === 'string') {
    const calc = h.leafHash(b64(b.leaf.bytes))
    if (!bytesEqual(calc, leaf)) throw new ProofCheckError(`leaf bytes hash to ${toHex(calc)}, not the leaf ${b.leaf.hash}`)
    bytesChecked = true
  }
  // 3. Indices agree with the header.
  if (b.inBlock.size !== header.leafCount) throw new ProofCheckError(`inBlock.size ${b.inBlock.size} != header leafCount ${header.leafCount}`)
  if (b.inLog.size !== header.logSize) throw new ProofCheckError(`inLog.size ${b.inLog.size} != header logSize ${header.logSize}`)
  if (b.leaf.index !== b.inLog.index || b.inLog.index !== header.firstLeaf + b.inBlock.index) throw new ProofCheckError(`leaf index ${b.leaf.index} does not match inLog ${b.inLog.index} / block firstLeaf ${header.firstLeaf} + ${b.inBlock.index}`)
  if (b.logRoot !== toHex(header.logRoot)) throw new ProofCheckError(`logRoot ${b.logRoot} differs from the signed header's ${toHex(header.logRoot)}`)
  // 4. Both inclusion proofs recompute to the signed roots.
  const run = (what: string, index: number, size: number, path: string[], root: Uint8Array): void => {
    if (!Array.isArray(path)) throw new ProofCheckError(`${what}.path: expected an array`)
    try {
      verifyInclusion(h, index, size, leaf, path.map((p, i) => hex(`${what}.path[${i}]`, p)), root)
    } catch (e) {
      if (e instanceof RootMismatchError) throw new ProofCheckError(`${what}: path recomputes to ${toHex(e.calculated)}, but the signed header says ${toHex(e.expected)}`)
      if (e instanceof ProofError) throw new ProofCheckError(`${what}: ${e.message}`)
      throw e
    }
  }
  run('inBlock', b.inBlock.index, b.inBlock.size, b.inBlock.path, header.blockRoot)
  run('inLog', b.inLog.index, b.inLog.size, b.inLog.path, header.logRoot)
  // 5. Witness co-signatures: report those that verify; a bad one is an error.
  const witnesses: string[] = []
  for (const [i, w] of (b.block.witnesses ?? []).entries()) {
    const pub = hex(`witnesses[${i}].publicKey`, w.publicKey, 32)
    if (!deps.ed25519Verify(pub, witnessToBeSigned(headerBytes), hex(`witnesses[${i}].signature`, w.signature, 64))) throw new ProofCheckError(`witness ${w.publicKey}: co-signature does not verify`)
    witnesses.push(w.publicKey)
  }
  return { leafIndex: b.leaf.index, leafHash: b.leaf.hash, height: header.height, blockHash, logSize: header.logSize, logRoot: b.logRoot, header, bytesChecked, witnesses }
}
