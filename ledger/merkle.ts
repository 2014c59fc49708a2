/**
 * A tiny, generic Merkle tree engine (RFC 9162 §2.1 tree shape) with an RFC 6962
 * SHA-256 profile. The hash function is injected, so this file has no Node imports (its
 * one import is the portable hex): the dashboard bundles it for the browser with
 * @noble/hashes, the ledger uses node:crypto. Verification = recompute, then compare; a mismatch throws
 * RootMismatchError carrying the expected and the calculated root.
 *
 * Numbers (indices, sizes) are JS numbers; every bit operation below goes through
 * helpers that are exact up to 2^53, so nothing silently wraps at 2^32.
 */
import { toHex } from '../protocol/portable/bytes.ts'

// Hex lives in protocol/portable/bytes.ts; re-exported for the tests and the CLI that import it from here.
export { toHex, fromHex } from '../protocol/portable/bytes.ts'

/** A hash function over bytes, e.g. `(b) => sha256(b)` from @noble/hashes or node:crypto. */
export type Sha256 = (data: Uint8Array) => Uint8Array

/** The three hashes a Merkle tree needs; `size` is the output length in bytes. */
export interface TreeHasher {
  readonly size: number
  /** MTH({}) — the root of the empty tree. */
  emptyRoot(): Uint8Array
  /** MTH({d}) = HASH(0x00 || d) [RFC 6962 §2.1]. */
  leafHash(leaf: Uint8Array): Uint8Array
  /** HASH(0x01 || left || right) [RFC 6962 §2.1]. */
  nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array
}

/** The RFC 6962 profile: domain separation 0x00 (leaf) / 0x01 (node) over the given SHA-256. */
export function rfc6962(sha256: Sha256): TreeHasher {
  const node = new Uint8Array(1 + 64)
  node[0] = 0x01
  return {
    size: 32,
    emptyRoot: () => sha256(new Uint8Array(0)),
    leafHash(leaf) {
      const buf = new Uint8Array(1 + leaf.length)
      buf.set(leaf, 1) // buf[0] = 0x00
      return sha256(buf)
    },
    nodeHash(left, right) {
      if (left.length !== 32 || right.length !== 32) {
        // Wrong-sized inputs can only come from a malformed proof; hash them anyway
        // (the root then will not match) rather than read past a fixed buffer.
        const buf = new Uint8Array(1 + left.length + right.length)
        buf[0] = 0x01
        buf.set(left, 1)
        buf.set(right, 1 + left.length)
        return sha256(buf)
      }
      node.set(left, 1)
      node.set(right, 33)
      return sha256(node)
    },
  }
}

// ---------------------------------------------------------------------------
// Errors

/** A proof or its parameters are malformed (wrong length, index out of range, ...). */
export class ProofError extends Error {
  override name = 'ProofError'
}

/** Recomputing gave a different root: carries both, so the caller can show them. */
export class RootMismatchError extends Error {
  override name = 'RootMismatchError'
  constructor(readonly expected: Uint8Array, readonly calculated: Uint8Array, what = 'root') {
    super(`${what} mismatch: expected ${toHex(expected)}, calculated ${toHex(calculated)}`)
  }
}

// ---------------------------------------------------------------------------
// Exact integer helpers (valid for 0 <= x < 2^53)

const TWO32 = 4294967296

function checkSize(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProofError(`${name}: expected a non-negative safe integer, got ${v}`)
}
/** Number of bits needed to represent x (bits.Len64). */
function bitLen(x: number): number {
  let n = 0
  while (x >= TWO32) {
    x = Math.floor(x / TWO32)
    n += 32
  }
  return x === 0 ? n : n + 32 - Math.clz32(x)
}
function shr(x: number, k: number): number {
  return Math.floor(x / 2 ** k)
}
function bitAt(x: number, i: number): number {
  return shr(x, i) % 2
}
function xor(a: number, b: number): number {
  const hi = (Math.floor(a / TWO32) ^ Math.floor(b / TWO32)) >>> 0
  const lo = ((a % TWO32) ^ (b % TWO32)) >>> 0
  return hi * TWO32 + lo
}
function popCount(x: number): number {
  let n = 0
  while (x > 0) {
    n += x % 2
    x = Math.floor(x / 2)
  }
  return n
}
function trailingZeros(x: number): number {
  let n = 0
  while (x > 0 && x % 2 === 0) {
    x /= 2
    n++
  }
  return n
}
/** Largest power of two strictly less than n (n >= 2) [RFC 9162 §2.1.1 "k"]. */
export function splitPoint(n: number): number {
  let k = 2 ** (bitLen(n) - 1)
  if (k === n) k /= 2
  return k
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i]
  return d === 0
}

// ---------------------------------------------------------------------------
// Roots and proof generation (RFC 9162 §2.1.1–2.1.4)

/**
 * MTH(D[start:end]) for any range, given a source of leaf hashes. `subtree`, when
 * given, may return the root of a complete aligned subtree (size a power of two,
 * start a multiple of it) from a cache, or undefined to have it computed.
 */
export interface LeafSource {
  leaf(i: number): Uint8Array
  subtree?(start: number, size: number): Uint8Array | undefined
}

export function rangeRoot(h: TreeHasher, src: LeafSource, start: number, end: number): Uint8Array {
  const n = end - start
  if (n === 0) return h.emptyRoot()
  if (n === 1) return src.leaf(start)
  if (src.subtree && 2 ** (bitLen(n) - 1) === n && start % n === 0) {
    const cached = src.subtree(start, n)
    if (cached) return cached
  }
  const k = splitPoint(n)
  return h.nodeHash(rangeRoot(h, src, start, start + k), rangeRoot(h, src, start + k, end))
}

/** MTH over an array of leaf hashes. */
export function rootOf(h: TreeHasher, leaves: readonly Uint8Array[]): Uint8Array {
  return rangeRoot(h, { leaf: (i) => leaves[i] }, 0, leaves.length)
}

/** PATH(m, D[0:n]) [RFC 9162 §2.1.3.1], bottom-up (sibling of the leaf first). */
export function inclusionProof(h: TreeHasher, src: LeafSource, index: number, size: number, offset = 0): Uint8Array[] {
  checkSize('size', size)
  if (!(index >= 0 && index < size)) throw new ProofError(`index ${index} out of range for tree size ${size}`)
  const path: Uint8Array[] = []
  const walk = (m: number, start: number, n: number): void => {
    if (n <= 1) return
    const k = splitPoint(n)
    if (m < k) {
      walk(m, start, k)
      path.push(rangeRoot(h, src, start + k, start + n))
    } else {
      walk(m - k, start + k, n - k)
      path.push(rangeRoot(h, src, start, start + k))
    }
  }
  walk(index, offset, size)
  return path
}

/** PROOF(m, D[0:n]) via SUBPROOF [RFC 9162 §2.1.4.1]; size1 must be in 1..size2. */
export function consistencyProof(h: TreeHasher, src: LeafSource, size1: number, size2: number): Uint8Array[] {
  checkSize('size1', size1)
  checkSize('size2', size2)
  if (size1 < 1 || size1 > size2) throw new ProofError(`consistency proof needs 1 <= size1 <= size2, got size1=${size1}, size2=${size2}`)
  const proof: Uint8Array[] = []
  const sub = (m: number, start: number, n: number, b: boolean): void => {
    if (m === n) {
      if (!b) proof.push(rangeRoot(h, src, start, start + n))
      return
    }
    const k = splitPoint(n)
    if (m <= k) {
      sub(m, start, k, b)
      proof.push(rangeRoot(h, src, start + k, start + n))
    } else {
      sub(m - k, start + k, n - k, false)
      proof.push(rangeRoot(h, src, start, start + k))
    }
  }
  if (size1 < size2) sub(size1, 0, size2, true)
  return proof
}

// ---------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2 and §2.1.4.2, in the decomposed form of
// transparency-dev/merkle proof/verify.go, with its strict preconditions)

function checkHashes(h: TreeHasher, what: string, list: readonly Uint8Array[]): void {
  for (let i = 0; i < list.length; i++) {
    if (!(list[i] instanceof Uint8Array) || list[i].length !== h.size) throw new ProofError(`${what}[${i}]: expected ${h.size} bytes, got ${list[i]?.length}`)
  }
}

/** inner = levels where the path to the leaf and to the last leaf differ; border = the rest that turn right. */
function decompInclProof(index: number, size: number): [number, number] {
  const inner = bitLen(xor(index, size - 1))
  const border = popCount(shr(index, inner))
  return [inner, border]
}
function chainInner(h: TreeHasher, seed: Uint8Array, proof: readonly Uint8Array[], index: number): Uint8Array {
  for (let i = 0; i < proof.length; i++) seed = bitAt(index, i) === 0 ? h.nodeHash(seed, proof[i]) : h.nodeHash(proof[i], seed)
  return seed
}
function chainInnerRight(h: TreeHasher, seed: Uint8Array, proof: readonly Uint8Array[], index: number): Uint8Array {
  for (let i = 0; i < proof.length; i++) if (bitAt(index, i) === 1) seed = h.nodeHash(proof[i], seed)
  return seed
}
function chainBorderRight(h: TreeHasher, seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  for (const p of proof) seed = h.nodeHash(p, seed)
  return seed
}

/**
 * The root implied by an inclusion proof. Preconditions (checked first):
 * index < size, leafHash is h.size bytes, proof has exactly the RFC length.
 */
export function rootFromInclusionProof(h: TreeHasher, index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  checkSize('index', index)
  checkSize('size', size)
  if (index >= size) throw new ProofError(`index is beyond size: ${index} >= ${size}`)
  if (!(leafHash instanceof Uint8Array) || leafHash.length !== h.size) throw new ProofError(`leafHash: expected ${h.size} bytes, got ${leafHash?.length}`)
  const [inner, border] = decompInclProof(index, size)
  if (proof.length !== inner + border) throw new ProofError(`wrong proof size ${proof.length}, want ${inner + border}`)
  checkHashes(h, 'proof', proof)
  const res = chainInner(h, leafHash, proof.slice(0, inner), index)
  return chainBorderRight(h, res, proof.slice(inner))
}

/** Throws ProofError or RootMismatchError unless `proof` shows leafHash at index in the tree of `size` with `root`. */
export function verifyInclusion(h: TreeHasher, index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const calc = rootFromInclusionProof(h, index, size, leafHash, proof)
  if (!bytesEqual(calc, root)) throw new RootMismatchError(root, calc)
}

/**
 * Throws unless `proof` shows the tree (size1, root1) is a prefix of (size2, root2).
 * Strict rules (as in the shared vectors): size1 = 0 is always an error, even 0 -> 0;
 * equal sizes need an empty proof and equal roots; the proof length must match exactly.
 */
export function verifyConsistency(h: TreeHasher, size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  checkSize('size1', size1)
  checkSize('size2', size2)
  if (size1 === 0) throw new ProofError('consistency proof with size1 = 0 proves nothing')
  if (size2 < size1) throw new ProofError(`size2 (${size2}) < size1 (${size1})`)
  if (size1 === size2) {
    if (proof.length > 0) throw new ProofError(`size1 = size2 = ${size1} but proof is not empty (${proof.length} nodes)`)
    if (!bytesEqual(root1, root2)) throw new RootMismatchError(root1, root2)
    return
  }
  if (proof.length === 0) throw new ProofError('empty consistency proof for different sizes')
  checkHashes(h, 'proof', proof)
  let [inner, border] = decompInclProof(size1 - 1, size2)
  const shift = trailingZeros(size1)
  inner -= shift // the proof starts at level `shift`
  // The proof carries the root of the 2^shift subtree, unless size1 is that very 2^shift.
  let seed = proof[0]
  let start = 1
  if (size1 === 2 ** shift) {
    seed = root1
    start = 0
  }
  if (proof.length !== start + inner + border) throw new ProofError(`wrong proof size ${proof.length}, want ${start + inner + border}`)
  const rest = proof.slice(start)
  const mask = shr(size1 - 1, shift)
  let hash1 = chainInnerRight(h, seed, rest.slice(0, inner), mask)
  hash1 = chainBorderRight(h, hash1, rest.slice(inner))
  if (!bytesEqual(hash1, root1)) throw new RootMismatchError(root1, hash1, 'root1')
  let hash2 = chainInner(h, seed, rest.slice(0, inner), mask)
  hash2 = chainBorderRight(h, hash2, rest.slice(inner))
  if (!bytesEqual(hash2, root2)) throw new RootMismatchError(root2, hash2, 'root2')
}

// ---------------------------------------------------------------------------
// Compact range [0, n): the right-edge subtree roots, O(log n) memory

/**
 * The roots of the perfect subtrees that make up [0, size), largest first. Appending
 * a leaf merges equal-sized neighbours (like binary carry), so the full-log root
 * is always available without keeping the leaves.
 */
export class CompactRange {
  private hashes: Uint8Array[] = []
  private n = 0
  constructor(private readonly h: TreeHasher, init?: { size: number; hashes: Uint8Array[] }) {
    if (init) {
      if (init.hashes.length !== popCount(init.size)) throw new ProofError(`compact range of size ${init.size} needs ${popCount(init.size)} hashes, got ${init.hashes.length}`)
      this.n = init.size
      this.hashes = init.hashes.slice()
    }
  }
  get size(): number {
    return this.n
  }
  /** The perfect-subtree roots, largest (leftmost) first. */
  get nodes(): Uint8Array[] {
    return this.hashes.slice()
  }
  append(leafHash: Uint8Array): void {
    let hash = leafHash
    let n = this.n
    // Each trailing 1 bit of n is a subtree of the same size as the one being carried.
    while (n % 2 === 1) {
      hash = this.h.nodeHash(this.hashes.pop()!, hash)
      n = Math.floor(n / 2)
    }
    this.hashes.push(hash)
    this.n++
  }
  /** MTH(D[0:size]): fold the subtree roots right to left. */
  root(): Uint8Array {
    if (this.hashes.length === 0) return this.h.emptyRoot()
    let r = this.hashes[this.hashes.length - 1]
    for (let i = this.hashes.length - 2; i >= 0; i--) r = this.h.nodeHash(this.hashes[i], r)
    return r
  }
  clone(): CompactRange {
    return new CompactRange(this.h, { size: this.n, hashes: this.hashes })
  }
}
