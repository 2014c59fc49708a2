/**
 * In-memory leaf hashes plus a cache of complete aligned subtree roots at heights >= 4
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
  /** Root of [start, start+size) if size is a cached power of two and start is aligned. */
  get(start: number, size: number): Uint8Array | undefined {
    if (size < CHUNK) return undefined
    const lvl = Math.log2(size) - CACHE_LEVEL
    const l = this.levels[lvl]
    const idx = start / size
    return l && idx < l.length ? l.get(idx) : undefined
  }
}

export class LeafTree {
  readonly hashes = new HashList()
  private cache: SubtreeCache
  private range: CompactRange
  constructor(private readonly h: TreeHasher) {
    this.cache = new SubtreeCache(h, (i) => this.hashes.get(i))
    this.range = new CompactRange(h)
  }
  get size(): number {
    return this.hashes.length
  }
  append(leafHash: Uint8Array): number {
    this.hashes.push(leafHash)
    this.range.append(leafHash)
    this.cache.added(this.hashes.length)
    return this.hashes.length - 1
  }
  leaf(i: number): Uint8Array {
    return this.hashes.get(i)
  }
  /** MTH of the whole log now (compact range: O(log n)). */
  root(): Uint8Array {
    return this.range.root()
  }
  /** A copy of the right-edge state, to check that new leaves extend this log. */
  cloneRange(): CompactRange {
    return this.range.clone()
  }
  private src: LeafSource = { leaf: (i) => this.hashes.get(i), subtree: (s, n) => this.cache.get(s, n) }
  rootAt(size: number): Uint8Array {
    return rangeRoot(this.h, this.src, 0, size)
  }
  inclusion(index: number, size: number): Uint8Array[] {
    return inclusionProof(this.h, this.src, index, size)
  }
  consistency(size1: number, size2: number): Uint8Array[] {
    return consistencyProof(this.h, this.src, size1, size2)
  }
  /** A leaf source for the block [first, first+count) with its own subtree cache. */
  blockSource(first: number): { src: LeafSource; cache: SubtreeCache } {
    const cache = new SubtreeCache(this.h, (i) => this.hashes.get(first + i))
    return { src: { leaf: (i) => this.hashes.get(first + i), subtree: (s, n) => cache.get(s, n) }, cache }
  }
}
