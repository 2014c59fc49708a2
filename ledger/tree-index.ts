/**
 * Leaf hashes plus a cache of complete aligned subtree roots at heights >= 4
 * (16 leaves), so any root, inclusion or consistency proof over n leaves costs
 * O(log n) cached lookups plus at most ~2x16 hashes: proofs stay well under a millisecond
 * at a million leaves while the cache uses n/8 hashes (4 MB per million leaves).
 */
import { rangeRoot, inclusionProof, consistencyProof, CompactRange, type LeafSource, type TreeHasher } from './merkle.ts'

const CACHE_LEVEL = 4
const CHUNK = 1 << CACHE_LEVEL

/** A growable byte array of 32-byte hashes. */
export class HashList {
  private buf = new Uint8Array(32 * 1024)
  length = 0
  push(h: Uint8Array): void {
    if ((this.length + 1) * 32 > this.buf.length) {
      const nb = new Uint8Array(this.buf.length * 2)
      nb.set(this.buf)
      this.buf = nb
    }
    this.buf.set(h, this.length * 32)
    this.length++
  }
  get(i: number): Uint8Array {
    return this.buf.subarray(i * 32, i * 32 + 32)
  }
  truncate(n: number): void {
    this.length = Math.min(this.length, n)
  }
}

/** Subtree roots of a sequence of leaves, at heights CACHE_LEVEL and above, built as leaves arrive. */
export class SubtreeCache {
  private levels: HashList[] = []
  constructor(private readonly h: TreeHasher, private readonly leaf: (i: number) => Uint8Array) {}
  /** Call after leaf number `count - 1` (relative) was added. */
  added(count: number): void {
    if (count % CHUNK !== 0) return
    const start = count - CHUNK
    let hash = rangeRoot(this.h, { leaf: (i) => this.leaf(i) }, start, count)
    for (let lvl = 0; ; lvl++) {
      if (!this.levels[lvl]) this.levels[lvl] = new HashList()
      const l = this.levels[lvl]
      l.push(hash)
      if (l.length % 2 !== 0) break
      hash = this.h.nodeHash(l.get(l.length - 2), l.get(l.length - 1))
    }
  }
  /** All cached roots, lowest level first (what blockNodeSource reads back). */
  *nodes(): Generator<Uint8Array> {
    for (const l of this.levels) for (let i = 0; i < l.length; i++) yield l.get(i)
  }
  /** Root of [start, start+size) if size is a cached power of two and start is aligned. */
  get(start: number, size: number): Uint8Array | undefined {
    if (size < CHUNK) return undefined
    const lvl = Math.log2(size) - CACHE_LEVEL
    const l = this.levels[lvl]
    const idx = start / size
    return l && idx < l.length ? l.get(idx) : undefined
  }
}

/** Number of subtree roots a finished block of `count` leaves keeps (its SubtreeCache, serialized). */
export function blockNodeCount(count: number): number {
  let n = 0
  for (let l = CACHE_LEVEL; 2 ** l <= count; l++) n += Math.floor(count / 2 ** l)
  return n
}

/** Reads a block's serialized subtree roots (levels concatenated, lowest first). */
export function blockNodeSource(count: number, node: (j: number) => Uint8Array): (start: number, size: number) => Uint8Array | undefined {
  return (start, size) => {
    if (size < CHUNK) return undefined
    const lvl = Math.log2(size)
    if (!Number.isInteger(lvl)) return undefined
    let off = 0
    for (let l = CACHE_LEVEL; l < lvl; l++) off += Math.floor(count / 2 ** l)
    const idx = start / size
    return Number.isInteger(idx) && idx < Math.floor(count / size) ? node(off + idx) : undefined
  }
}

/** The level files a LeafTree keeps: height 0 (leaf hashes) and CACHE_LEVEL and up. */
export interface LevelStore {
  level(height: number): HashFile
}
export interface HashFile {
  readonly count: number
  append(h: Uint8Array): number
  get(i: number): Uint8Array
}

/** In-memory level store (read-only opens without an index, tests). */
export class MemoryLevels implements LevelStore {
  private levels: HashList[] = []
  level(height: number): HashFile {
    let l = this.levels[height]
    if (!l) {
      const hl = new HashList()
      l = this.levels[height] = hl
    }
    const hl = l
    return { get count() { return hl.length }, append: (h) => (hl.push(h), hl.length - 1), get: (i) => hl.get(i) }
  }
}

/**
 * Leaf hashes (height 0) plus complete aligned subtree roots at heights >= CACHE_LEVEL, in
 * a LevelStore (files: see index-store.ts), so any root, inclusion or consistency proof
 * costs O(log n) lookups plus at most ~2x16 hashes, and memory does not grow with n.
 */
export class LeafTree {
  private range: CompactRange
  private n = 0
  constructor(private readonly h: TreeHasher, private readonly store: LevelStore = new MemoryLevels()) {
    this.range = new CompactRange(h)
  }
  get size(): number {
    return this.n
  }
  /** Adopts the first n leaves already in the store (their subtree roots too); rebuilds the right edge. */
  restore(n: number): void {
    this.n = n
    const hashes: Uint8Array[] = []
    let pos = 0
    for (let k = 52; k >= 0; k--) {
      const size = 2 ** k
      if (Math.floor(n / size) % 2 === 1) {
        hashes.push(new Uint8Array(rangeRoot(this.h, this.src, pos, pos + size)))
        pos += size
      }
    }
    this.range = new CompactRange(this.h, { size: n, hashes })
  }
  append(leafHash: Uint8Array): number {
    const l0 = this.store.level(0)
    l0.append(leafHash)
    this.range.append(leafHash)
    this.n++
    if (this.n % CHUNK === 0) {
      let hash = rangeRoot(this.h, { leaf: (i) => l0.get(i) }, this.n - CHUNK, this.n)
      for (let lvl = CACHE_LEVEL; ; lvl++) {
        const l = this.store.level(lvl)
        l.append(hash)
        const c = l.count
        if (c % 2 !== 0) break
        hash = this.h.nodeHash(l.get(c - 2), l.get(c - 1))
      }
    }
    return this.n - 1
  }
  leaf(i: number): Uint8Array {
    return this.store.level(0).get(i)
  }
  /** MTH of the whole log now (compact range: O(log n)). */
  root(): Uint8Array {
    return this.range.root()
  }
  /** A copy of the right-edge state, to check that new leaves extend this log. */
  cloneRange(): CompactRange {
    return this.range.clone()
  }
  private subtree(s: number, n: number): Uint8Array | undefined {
    if (n < CHUNK) return undefined
    const lvl = Math.log2(n)
    if (!Number.isInteger(lvl)) return undefined
    const idx = s / n
    if (!Number.isInteger(idx) || s + n > this.n) return undefined
    return this.store.level(lvl).get(idx)
  }
  private src: LeafSource = { leaf: (i) => this.leaf(i), subtree: (s, n) => this.subtree(s, n) }
  rootAt(size: number): Uint8Array {
    return rangeRoot(this.h, this.src, 0, size)
  }
  inclusion(index: number, size: number): Uint8Array[] {
    return inclusionProof(this.h, this.src, index, size)
  }
  consistency(size1: number, size2: number): Uint8Array[] {
    return consistencyProof(this.h, this.src, size1, size2)
  }
  /** A leaf source for the block [first, first+count) with its own (in-memory, per-block) subtree cache. */
  blockSource(first: number): { src: LeafSource; cache: SubtreeCache } {
    const cache = new SubtreeCache(this.h, (i) => this.leaf(first + i))
    return { src: { leaf: (i) => this.leaf(first + i), subtree: (s, n) => cache.get(s, n) }, cache }
  }
}
