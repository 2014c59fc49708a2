/**
 * Reading frames back: by leaf hash, or by device and t0 range. The locators are derived
 * data, so every frame read is checked against its leaf before its bytes are handed out.
 */
import { leafHashFast } from './crypto.ts'
import { bytesEqual } from './merkle.ts'
import { decodeFrameLike } from './records.ts'
import { KIND_FRAME, isFrameKind } from './leaf.ts'
import { indexOf, kindOf } from './leaf-index.ts'
import { indexDamaged } from './checkpoint.ts'
import { LedgerError, type FrameInfo } from './types.ts'
import type { LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export async function frameAt(s: LedgerState, i: number): Promise<FrameInfo> {
  let r = s.idx.loc.get(i)
  const k = r[0]
  const deviceId = s.deviceNames[r.readUInt32LE(32)]
  const seq = r.readDoubleLE(24)
  const t0 = r.readDoubleLE(16)
  const leafHash = new Uint8Array(s.tree.leaf(i))
  let bytes: Uint8Array | null = null
  if (k === KIND_FRAME) {
    await s.store.settled()
    // Re-read: retention may have pruned it (and moved it) while we waited.
    r = s.idx.loc.get(i)
    if (r[0] === KIND_FRAME) {
      // The locator is derived data: never hand out bytes that are not this leaf's.
      let f
      try {
        f = decodeFrameLike(s.store.readBody(r.readUInt32LE(4), r.readDoubleLE(8)))
      } catch {
        // after a write failure, a leaf appended since was never written: not index damage
        if (s.store.fault) throw new LedgerError(`leaf ${i} was not stored (${s.store.fault.message})`, 'not-found')
        throw indexDamaged(s, `locator of leaf ${i}`)
      }
      if (f.deviceId !== deviceId || f.seq !== seq || !bytesEqual(leafHashFast(f.data), leafHash)) throw indexDamaged(s, `locator of leaf ${i}`)
      bytes = new Uint8Array(f.data)
    }
  }
  return { leafIndex: i, leafHash: toHex(leafHash), deviceId, seq, t0, bytes }
}

/** A frame by its leaf hash (hex or bytes); undefined if unknown or not a frame. */
export async function getFrame(s: LedgerState, leafHash: Uint8Array | string): Promise<FrameInfo | undefined> {
  const i = indexOf(s, leafHash)
  if (i < 0 || !isFrameKind(kindOf(s, i))) return undefined
  return frameAt(s, i)
}

/** Frames by device and t0 range [from, to), in ledger order, at most `limit` (default 1000). */
export async function frames(s: LedgerState, q: { deviceId?: string; from?: number; to?: number; limit?: number }): Promise<FrameInfo[]> {
  const limit = q.limit ?? 1000
  const from = q.from ?? -Infinity
  const to = q.to ?? Infinity
  const out: FrameInfo[] = []
  const take = async (i: number): Promise<void> => {
    const r = s.idx.loc.get(i)
    if (!isFrameKind(r[0])) return
    const t = r.readDoubleLE(16)
    if (t < from || t >= to) return
    try {
      out.push(await frameAt(s, i))
    } catch (e) {
      // after a write failure the leaves appended since were never stored: not in the record
      if (!(s.store.fault && e instanceof LedgerError && e.code === 'not-found')) throw e
    }
  }
  if (q.deviceId === undefined) {
    for (let i = 0; i < s.tree.size && out.length < limit; i++) await take(i)
    return out
  }
  const d = s.devices.get(q.deviceId)
  if (!d) return out
  // Indexed leaves from SQLite (in pages: no cursor stays open across awaits), then the tail.
  const split = s.indexed
  let cursor = 0
  for (;;) {
    const page = s.idx.deviceLeaves(d.id, cursor, split, 512)
    for (const i of page) {
      if (out.length >= limit) return out
      await take(i)
    }
    if (page.length < 512) break
    cursor = page[page.length - 1] + 1
  }
  for (let i = split; i < s.tree.size && out.length < limit; i++) if (s.idx.loc.get(i).readUInt32LE(32) === d.id && isFrameKind(kindOf(s, i))) await take(i)
  return out
}

/**
 * One page of a device's frame leaves with t0 in [from, to), in ledger order, from leaf
 * `cursor` on: the locators only, no frame is read. `next` is where the following page
 * starts, -1 at the end. A page looks at no more than `scan` leaves, so a caller walking a
 * day of frames can hand the event loop back between pages and read frames (frameAt) a
 * few at a time.
 */
export function frameLeaves(s: LedgerState, q: { deviceId: string; from: number; to: number; cursor?: number; scan?: number }): { leaves: { leafIndex: number; t0: number }[]; next: number } {
  const scan = q.scan ?? 512
  if (!Number.isInteger(scan) || scan < 1) throw new RangeError(`scan: expected a positive integer, got ${q.scan}`)
  const d = s.devices.get(q.deviceId)
  const leaves: { leafIndex: number; t0: number }[] = []
  if (!d) return { leaves, next: -1 }
  const keep = (i: number): void => {
    const r = s.idx.loc.get(i)
    if (!isFrameKind(r[0])) return
    const t0 = r.readDoubleLE(16)
    if (t0 >= q.from && t0 < q.to) leaves.push({ leafIndex: i, t0 })
  }
  const cursor = Math.max(0, q.cursor ?? 0)
  // Indexed leaves from SQLite (no cursor stays open across pages), then the unindexed tail.
  const split = s.indexed
  if (cursor < split) {
    const page = s.idx.deviceLeaves(d.id, cursor, split, scan)
    for (const i of page) keep(i)
    return { leaves, next: page.length < scan ? split : page[page.length - 1] + 1 }
  }
  const end = Math.min(s.tree.size, cursor + scan)
  for (let i = cursor; i < end; i++) if (s.idx.loc.get(i).readUInt32LE(32) === d.id) keep(i)
  return { leaves, next: end >= s.tree.size ? -1 : end }
}
