/**
 * Retention: frame payloads older than retentionDays are replaced by their leaf hash in
 * closed segments (rewritten atomically), and the locators of a rewritten segment are
 * moved to the new offsets. Leaf hashes and headers stay, so proofs still verify.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { StorageError, parseSegment, segName } from './store.ts'
import { decodeHeader } from './block.ts'
import { RecordType, encodePrunedFrame, decodeFrameLike, decodeBlockRecord } from './records.ts'
import { KIND_PRUNED, isLeafRecord } from './leaf.ts'
import { timeOf } from './leaf-index.ts'
import { flushIndex } from './checkpoint.ts'
import type { LedgerState } from './state.ts'

/**
 * Replaces frame payloads with t0 older than retentionDays by their leaf hash, in
 * closed segments (rewritten atomically). Leaf hashes and headers stay: proofs still verify.
 */
export async function prune(s: LedgerState, nowMs: number): Promise<{ pruned: number; segments: number }> {
  const days = s.cfg.retentionDays
  if (days === undefined) return { pruned: 0, segments: 0 }
  const cutoff = nowMs - days * 86_400_000
  // Everything written is durable now: index it, so every closed segment qualifies.
  await flushIndex(s)
  const active = s.store.activeSegment
  let pruned = 0
  let segments = 0
  // Per-segment leaf ranges and earliest unpruned t0 (O(segments)): only segments with
  // something to prune are read. Only closed segments whose leaves are all indexed and
  // that lie before the checkpoint's block (so the resume position does not move).
  for (const seg of [...s.segStats.keys()].sort((a, b) => a - b)) {
    const st = s.segStats.get(seg)!
    if (seg >= active || !s.ckpt || seg >= s.ckpt.seg || st.end > s.indexed || !(st.tmin < cutoff)) continue
    const data = await readFile(join(s.cfg.dir, segName(seg)))
    const parsed = parseSegment(seg, data)
    if (parsed.damage) throw new StorageError(`${segName(seg)}: ${parsed.damage.reason} at offset ${parsed.damage.offset}; not pruning`)
    const bodies: Uint8Array[] = []
    let i = st.first
    let n = 0
    let tmin = Infinity
    for (const r of parsed.records) {
      const type = r.body[0]
      let body: Uint8Array = r.body
      if (isLeafRecord(type)) {
        if (type === RecordType.Frame) {
          const t = timeOf(s, i)
          if (t < cutoff) {
            body = encodePrunedFrame(decodeFrameLike(r.body), s.tree.leaf(i))
            n++
          } else if (t < tmin) tmin = t
        }
        i++
      }
      bodies.push(body)
    }
    if (i !== st.end) throw new StorageError(`${segName(seg)}: holds ${i - st.first} leaves, the index says ${st.end - st.first}; not pruning (run 'mhealth ledger verify')`)
    if (n > 0) {
      // Marker first (fully synced): a crash after the rename redoes the locator update on open.
      s.idx.setPruneMarker({ seg, first: st.first })
      await s.store.replaceSegment(seg, bodies)
      relocate(s, seg, st.first, bodies)
      s.idx.setPruneMarker(undefined)
      pruned += n
      segments++
    }
    st.tmin = tmin
    s.dirtySegs.add(seg)
  }
  if (pruned) s.cfg.log(`ledger: retention pruned ${pruned} frame payloads older than ${days} days in ${segments} segment(s)`)
  return { pruned, segments }
}

/** Rewrites the locators (leaves and blocks) of segment `seg` from its record bodies, in file order. */
export function relocate(s: LedgerState, seg: number, first: number, bodies: Uint8Array[]): void {
  let pos = 0
  let i = first
  const rec = Buffer.alloc(40)
  const brec = Buffer.alloc(32)
  for (const body of bodies) {
    const type = body[0]
    if (isLeafRecord(type)) {
      rec.set(s.idx.loc.get(i))
      if (type === RecordType.PrunedFrame) rec[0] = KIND_PRUNED
      rec.writeUInt32LE(seg, 4)
      rec.writeDoubleLE(pos, 8)
      s.idx.loc.put(i, rec)
      i++
    } else if (type === RecordType.Block) {
      const h = decodeHeader(new Uint8Array(decodeBlockRecord(Buffer.from(body.buffer, body.byteOffset, body.length)).header)).height
      brec.set(s.idx.blocks.get(h))
      brec.writeUInt32LE(seg, 0)
      brec.writeDoubleLE(pos, 8)
      s.idx.blocks.put(h, brec)
    }
    pos += 8 + body.length
  }
  s.idx.loc.sync()
  s.idx.blocks.sync()
}

/** Prunes now, then hourly (retentionDays set). */
export async function startRetention(s: LedgerState): Promise<void> {
  if (s.cfg.retentionDays === undefined) return
  await prune(s, s.cfg.now())
  s.pruneTimer = setInterval(() => void prune(s, s.cfg.now()).catch((e) => s.cfg.log(`ledger: retention failed: ${e.message}`)), 3600_000)
  s.pruneTimer.unref()
}
