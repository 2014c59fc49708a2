/**
 * verify's cross-check of the index against the segments. The index is derived data, but
 * proofs and lookups read it, not the segments: a flipped byte in index/L00.bin makes
 * `ledger proof` answer "no leaf with hash ..." for a frame that is there, and a writer's
 * open does not notice (it checks the checkpoint block and the log root, which a damaged
 * leaf inside a stored subtree does not change). So verify compares, for everything up to
 * the index checkpoint (beyond it the index is cut back on open anyway):
 *   L00.bin   each leaf hash with the one recomputed from the segment record
 *   loc.bin   each leaf's kind, segment and offset with where verify found it
 *   index.db  that each leaf hash's 6-byte prefix finds the leaf (what proof looks up)
 *   blocks.bin  each block's segment, offset and first leaf
 *   L04.bin.. each stored subtree root, recomputed from the level below
 * and reports the first disagreement.
 */
import { join } from 'node:path'
import { hasher } from './crypto.ts'
import { bytesEqual, rootOf } from './merkle.ts'
import { IndexStore, type Checkpoint } from './index-store.ts'
import { hashPrefix } from './leaf-index.ts'
import { segName } from './store.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export const REBUILD = '; the index is derived data: remove the index directory and open the ledger as writer (start the gateway) to rebuild it from the segment files'

export class IndexCheck {
  private constructor(private readonly idx: IndexStore, readonly ckpt: Checkpoint, private readonly dir: string, private readonly relocating: boolean) {}

  /**
   * The index of the ledger in `dir` up to its checkpoint; undefined if it has none (nothing
   * to check), a message if its files fall short of the checkpoint.
   */
  static open(dir: string): IndexCheck | string | undefined {
    const idx = IndexStore.open(dir, true, () => {})
    if (!idx) return undefined
    let c: Checkpoint | undefined
    try {
      c = idx.checkpoint()
    } catch {
      // an unreadable checkpoint: open distrusts and rebuilds the whole index
    }
    if (!c || !Number.isSafeInteger(c.leaves) || !Number.isSafeInteger(c.blocks) || c.blocks < 1) {
      idx.close()
      return undefined
    }
    try {
      idx.adopt(c) // read-only: trusts the files up to the checkpoint, truncates nothing
    } catch (e) {
      idx.close()
      return `index damaged: ${join(dir, 'index')}: ${(e as Error).message}${REBUILD}`
    }
    return new IndexCheck(idx, c, join(dir, 'index'), idx.pruneMarker() !== undefined)
  }

  private guard(what: string, f: () => string | undefined): string | undefined {
    try {
      const m = f()
      return m && `index damaged: ${m}${REBUILD}`
    } catch (e) {
      return `index damaged: ${what}: ${(e as Error).message}${REBUILD}`
    }
  }

  /** Leaf i as the segments have it. */
  leaf(i: number, hash: Uint8Array, kind: number, seg: number, off: number): string | undefined {
    if (i >= this.ckpt.leaves) return undefined
    return this.guard(`leaf ${i}`, () => {
      const stored = this.idx.levels.level(0).get(i)
      if (!bytesEqual(stored, hash)) return `${join(this.dir, 'L00.bin')} holds ${toHex(stored)} for leaf ${i}, but its record (${segName(seg)} offset ${off}) hashes to ${toHex(hash)}`
      const loc = this.idx.loc.get(i)
      // Mid-retention (a rewrite whose locator update the next writer open redoes), locators may point into the old layout.
      if (!this.relocating && (loc[0] !== kind || loc.readUInt32LE(4) !== seg || loc.readDoubleLE(8) !== off)) {
        return `${join(this.dir, 'loc.bin')} says leaf ${i} is kind ${loc[0]} at ${segName(loc.readUInt32LE(4))} offset ${loc.readDoubleLE(8)}, but it is kind ${kind} at ${segName(seg)} offset ${off}`
      }
      if (!this.idx.leavesByHashPrefix(hashPrefix(hash)).includes(i)) return `${join(this.dir, 'index.db')} does not find leaf ${i} by its hash ${toHex(hash)}`
      return undefined
    })
  }

  /** Block `height` as the segments have it. */
  block(height: number, seg: number, off: number, firstLeaf: number, hash: Uint8Array, logSize: number): string | undefined {
    if (height >= this.ckpt.blocks) return undefined
    return this.guard(`block ${height}`, () => {
      const r = this.idx.blocks.get(height)
      if (r.readUInt32LE(0) !== seg || r.readDoubleLE(8) !== off || r.readDoubleLE(16) !== firstLeaf) {
        return `${join(this.dir, 'blocks.bin')} says block ${height} is at ${segName(r.readUInt32LE(0))} offset ${r.readDoubleLE(8)} from leaf ${r.readDoubleLE(16)}, but it is at ${segName(seg)} offset ${off} from leaf ${firstLeaf}`
      }
      if (height === this.ckpt.blocks - 1 && (this.ckpt.head !== toHex(hash) || this.ckpt.leaves !== logSize || this.ckpt.seg !== seg || this.ckpt.off !== off)) {
        return `the checkpoint in ${join(this.dir, 'index.db')} does not describe block ${height} (${toHex(hash)}, log size ${logSize} at ${segName(seg)} offset ${off})`
      }
      return undefined
    })
  }

  /** The stored subtree roots (L04.bin and up), after every leaf passed leaf(). */
  levels(): string | undefined {
    const n = this.ckpt.leaves
    for (let h = 4; 2 ** h <= n; h++) {
      const m = this.guard(`level ${h}`, () => {
        const below = this.idx.levels.level(h === 4 ? 0 : h - 1)
        const here = this.idx.levels.level(h)
        for (let j = 0; j < Math.floor(n / 2 ** h); j++) {
          const want = h === 4 ? rootOf(hasher, Array.from({ length: 16 }, (_, k) => below.get(16 * j + k))) : hasher.nodeHash(below.get(2 * j), below.get(2 * j + 1))
          const got = here.get(j)
          if (!bytesEqual(got, want)) return `${join(this.dir, `L${String(h).padStart(2, '0')}.bin`)} entry ${j} (leaves ${j * 2 ** h}..${(j + 1) * 2 ** h - 1}) holds ${toHex(got)}, the leaves hash to ${toHex(want)}`
        }
        return undefined
      })
      if (m) return m
    }
    return undefined
  }

  close(): void {
    this.idx.close()
  }
}
