/**
 * The leaf indexes: one locator per leaf (loc.bin), the (device, seq) and leaf-hash
 * lookups (SQLite for checkpointed leaves, in-memory maps for the tail after the
 * checkpoint) and the per-segment leaf ranges retention works from.
 *
 * Locator record (40 bytes, loc.bin): kind u8 @0, segment u32le @4, offset f64le @8,
 * t (frame t0 / consent issuedAt) f64le @16, seq f64le @24, device number u32le @32.
 */
import { bytesEqual } from './merkle.ts'
import type { FrameMeta } from './records.ts'
import { KIND_FRAME } from './leaf.ts'
import { tryFromHex } from './types.ts'
import type { LedgerState } from './state.ts'

/** First 6 bytes of a leaf hash as a number (the SQLite hash-index key). */
export function hashPrefix(h: Uint8Array): number {
  return ((h[0] * 256 + h[1]) * 256 + h[2]) * 16777216 + ((h[3] << 16) | (h[4] << 8) | h[5])
}

/** Appends leaf `h` to the tree and its locator to loc.bin; returns its leaf index. */
export function addLeaf(s: LedgerState, kind: number, h: Uint8Array, meta: FrameMeta | null, seg: number, off: number, t = 0): number {
  const i = s.tree.append(h)
  const r = s.idx.loc.reserve()
  r[0] = kind
  r.writeUInt32LE(seg, 4)
  r.writeDoubleLE(off, 8)
  if (meta) {
    let d = s.devices.get(meta.deviceId)
    if (!d) {
      d = { id: s.deviceNames.length, dbMax: -1, maxSeq: -1 }
      s.deviceNames.push(meta.deviceId)
      s.devices.set(meta.deviceId, d)
      s.dirtyDevices.add(d.id)
    }
    let m = s.tailSeq.get(d.id)
    if (!m) s.tailSeq.set(d.id, (m = new Map()))
    if (!m.has(meta.seq)) m.set(meta.seq, i)
    if (meta.seq > d.maxSeq) d.maxSeq = meta.seq
    t = meta.t0
    r.writeDoubleLE(meta.seq, 24)
    r.writeUInt32LE(d.id, 32)
  }
  r.writeDoubleLE(t, 16)
  const st = s.segStats.get(seg)
  const tf = kind === KIND_FRAME ? t : Infinity
  if (!st) s.segStats.set(seg, { first: i, end: i + 1, tmin: tf })
  else {
    st.end = i + 1
    if (tf < st.tmin) st.tmin = tf
  }
  s.dirtySegs.add(seg)
  return i
}

/**
 * Duplicate detection: the in-memory tail (not yet indexed), then a seq above the
 * device's highest indexed seq (the usual case: no lookup), then the SQLite index.
 */
export function hasFrame(s: LedgerState, deviceId: string, seq: number): boolean {
  const d = s.devices.get(deviceId)
  if (!d) return false
  if (s.tailSeq.get(d.id)?.has(seq)) return true
  if (!(seq <= d.dbMax)) return false
  return s.idx.leafBySeq(d.id, seq) >= 0
}

/** The leaf index of a leaf hash (hex or bytes), or -1: the SQLite index, then the unindexed tail. */
export function indexOf(s: LedgerState, leafHash: Uint8Array | string): number {
  const h = typeof leafHash === 'string' ? tryFromHex(leafHash) : leafHash
  if (!h || h.length !== 32) return -1
  const split = s.indexed
  for (const i of s.idx.leavesByHashPrefix(hashPrefix(h))) if (i < split && bytesEqual(s.tree.leaf(i), h)) return i
  for (let i = split; i < s.tree.size; i++) if (bytesEqual(s.tree.leaf(i), h)) return i
  return -1
}

export function kindOf(s: LedgerState, i: number): number {
  return s.idx.loc.get(i)[0]
}

export function timeOf(s: LedgerState, i: number): number {
  return s.idx.loc.get(i).readDoubleLE(16)
}

/** Where leaf i's record lives. */
export function locationOf(s: LedgerState, i: number): { seg: number; offset: number } {
  const r = s.idx.loc.get(i)
  return { seg: r.readUInt32LE(4), offset: r.readDoubleLE(8) }
}

/** Leaf i's record body, read back from its segment (the record must be durable). */
export function readLeafBody(s: LedgerState, i: number): Buffer {
  const r = s.idx.loc.get(i)
  return s.store.readBody(r.readUInt32LE(4), r.readDoubleLE(8))
}
