/**
 * The index checkpoint: writing the on-disk index up to the last durable block (see
 * index-store.ts for what it holds and why it can always be rebuilt), and giving up on
 * it when a read finds it damaged.
 */
import { blockNodeCount } from './tree-index.ts'
import type { Checkpoint, IndexRows } from './index-store.ts'
import { isFrameKind } from './leaf.ts'
import { hashPrefix } from './leaf-index.ts'
import { getBlock } from './block-index.ts'
import { LedgerError } from './types.ts'
import { markOf, writeHighWater, writeHighWaterSync } from './high-water.ts'
import type { LedgerState } from './state.ts'
import { toHex } from '../protocol/portable/bytes.ts'

/** ... or as soon as this many leaves are waiting, whatever indexCommitMs says (bounds the tail's memory). */
const COMMIT_LEAVES = 1 << 16

/**
 * Writes the index up to the last durable block (flat files, then rows and checkpoint
 * in one SQLite transaction) and drops those leaves from the in-memory tail. Runs at
 * most every indexCommitMs unless forced or COMMIT_LEAVES are waiting.
 */
export function commitIndex(s: LedgerState, force = false, sync = false): Promise<void> | undefined {
  if (s.cfg.readOnly || !s.idx.persistent || s.indexBroken) return
  if (s.committing) return force ? (s.committing.then(() => commitIndex(s, true)) as Promise<void>) : undefined
  const B = s.durableBlocks
  if (B <= (s.ckpt?.blocks ?? 0)) return
  const b = B - 1 === s.lastBlock?.header.height ? s.lastBlock : getBlock(s, B - 1)
  if (!b) return
  const N = b.header.logSize
  if (!force && N - s.indexed < COMMIT_LEAVES && performance.now() - s.lastCommit < s.cfg.indexCommitMs) return
  const rows: IndexRows = { devices: [], frames: [], hashes: [], consents: [], witnesses: [], segs: [] }
  for (let i = s.indexed; i < N; i++) {
    const r = s.idx.loc.get(i)
    rows.hashes.push([hashPrefix(s.tree.leaf(i)), i])
    if (!isFrameKind(r[0])) continue
    const dev = r.readUInt32LE(32)
    const seq = r.readDoubleLE(24)
    rows.frames.push([dev, seq, i])
    const d = s.devices.get(s.deviceNames[dev])!
    if (seq > d.dbMax) {
      d.dbMax = seq
      s.dirtyDevices.add(dev)
    }
  }
  // Snapshot everything the commit writes: appends go on while the files are fsynced.
  for (const id of s.dirtyDevices) {
    const d = s.devices.get(s.deviceNames[id])!
    rows.devices.push({ id, name: s.deviceNames[id], maxSeq: d.dbMax })
  }
  s.dirtyDevices = new Set()
  while (s.tailConsent.length && s.tailConsent[0][0] < N) rows.consents.push(s.tailConsent.shift()!)
  rows.witnesses = s.tailWitness.filter((w) => w[0] < B)
  s.tailWitness = s.tailWitness.filter((w) => w[0] >= B)
  for (const seg of s.dirtySegs) rows.segs.push([seg, { ...s.segStats.get(seg)! }])
  s.dirtySegs = new Set()
  const brec = s.idx.blocks.get(B - 1)
  const c: Checkpoint = { v: 1, leaves: N, blocks: B, bnodes: brec.readDoubleLE(24) + blockNodeCount(b.header.leafCount), seg: brec.readUInt32LE(0), off: brec.readDoubleLE(8), head: toHex(b.hash) }
  s.lastCommit = performance.now()
  // The block is durable, so the high-water mark may move to it; never down (a rebuild
  // commits its way up from block 0 again).
  const raise = c.blocks > s.highWater
  const done = (): void => {
    s.idx.commitRows(c, rows)
    s.ckpt = c
    if (raise && c.blocks > s.highWater) s.highWater = c.blocks
    s.indexed = N
    for (const [dev, m] of s.tailSeq) {
      for (const [seq, leaf] of m) if (leaf < N) m.delete(seq)
      if (m.size === 0) s.tailSeq.delete(dev)
    }
  }
  const files = s.idx.writeFiles(c)
  if (sync) {
    for (const f of files) f.sync()
    if (raise) writeHighWaterSync(s.cfg.dir, markOf(c))
    done()
    return
  }
  // fdatasync off the event loop (the thread pool), then the SQLite transaction.
  s.committing = Promise.all([...files.map((f) => f.syncAsync()), raise ? writeHighWater(s.cfg.dir, markOf(c)) : undefined])
    .then(done)
    .catch((e: unknown) => {
      // Nothing was committed: put the snapshot back so the next commit writes it.
      s.tailConsent.unshift(...rows.consents)
      s.tailWitness.push(...rows.witnesses)
      for (const d of rows.devices) s.dirtyDevices.add(d.id)
      for (const [seg] of rows.segs) s.dirtySegs.add(seg)
      throw e
    })
    .finally(() => {
      s.committing = undefined
    })
  return s.committing
}

/** Makes everything written durable, then checkpoints the index over every block. */
export async function flushIndex(s: LedgerState): Promise<void> {
  await s.store.sync()
  s.durableBlocks = s.blockCount // store.sync(): every queued record is durable
  await commitIndex(s, true)
}

/** Marks the index untrusted (next open rebuilds it) and returns the error to throw. */
export function indexDamaged(s: LedgerState, what: string): LedgerError {
  s.cfg.log(`ledger: index damaged (${what}); it will be rebuilt on the next open`)
  if (!s.cfg.readOnly && !s.indexBroken) s.idx.invalidate(what)
  s.indexBroken = true
  return new LedgerError(`index damaged: ${what} (rebuilt on next open)`, 'block')
}
