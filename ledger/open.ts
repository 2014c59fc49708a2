/**
 * Opening and closing a ledger directory: check ledger.json, adopt the index checkpoint
 * (after checking it against the segments) or start from nothing, replay the segment
 * records after it, start the block and retention timers; on close, cut a last block
 * and checkpoint the index. ledger.ts's openLedger rebuilds the index when it is untrusted.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hasher } from './crypto.ts'
import { bytesEqual } from './merkle.ts'
import { LeafTree, blockNodeCount } from './tree-index.ts'
import { SegmentStore, StorageError, listSegments, parseSegment, segName, readRecordAt, type ScannedRecord } from './store.ts'
import { IndexStore } from './index-store.ts'
import { RecordType, decodeBlockRecord, decodeWitnessRecord } from './records.ts'
import { parseConsent } from './consent.ts'
import { readMeta, writeMeta } from './meta.ts'
import { decodeLeafRecord } from './leaf.ts'
import { addLeaf } from './leaf-index.ts'
import { blockFromRecord, witnessesOf } from './block-index.ts'
import { commitIndex } from './checkpoint.ts'
import { acceptBlock, cutBlock, startBlockTimer } from './chain.ts'
import { applyConsent } from './consent-log.ts'
import { attachWitness } from './replication.ts'
import { relocate, startRetention } from './retention.ts'
import { LedgerError, type LedgerOptions } from './types.ts'
import { LedgerState, resolveOptions } from './state.ts'
import { REFUSE, checkMarkBlock, checkReaches, checkSegmentList, indexClaim, markOf, readHighWater, segmentSize, writeHighWaterSync, type Claim } from './high-water.ts'
import { toHex } from '../protocol/portable/bytes.ts'

/**
 * The index cannot be trusted (damaged, deleted, disagrees with the segments): openLedger
 * rebuilds it, handing `claim` (what its checkpoint said was acknowledged) to the rebuild.
 */
export class IndexUntrusted extends Error {
  claim: Claim | undefined
}

/**
 * Opens the ledger in opts.dir; `noIndex` reads everything from the segments into memory;
 * `carried` is what a dropped index's checkpoint claimed. Throws IndexUntrusted, and
 * LedgerError('damaged') when the segments fall short of what was acknowledged.
 */
export async function loadLedger(opts: LedgerOptions, noIndex = false, carried?: Claim): Promise<LedgerState> {
  const { cfg, key, producerPublicKey } = resolveOptions(opts)
  if (!cfg.readOnly) await mkdir(cfg.dir, { recursive: true })
  const meta = await readMeta(cfg.dir)
  if (meta && (!bytesEqual(meta.producerPublicKey, producerPublicKey) || meta.producerId !== cfg.producerId)) {
    throw new LedgerError(`${cfg.dir} belongs to producer '${meta.producerId}' key ${toHex(meta.producerPublicKey)}, not '${cfg.producerId}' key ${toHex(producerPublicKey)}`, 'invalid')
  }
  if (!meta && !cfg.readOnly) await writeMeta(cfg.dir, { producerId: cfg.producerId, producerPublicKey })
  // Before anything is read or cut: the mark first (a live writer raises it only after its
  // records are durable), then whether the segments still reach it.
  const mark = readHighWater(cfg.dir)
  const segs = await listSegments(cfg.dir)
  const hole = checkSegmentList(segs, (n) => segmentSize(cfg.dir, n)) ?? (mark && checkMarkBlock(cfg.dir, mark))
  if (hole) throw new LedgerError(hole + REFUSE, 'damaged')
  const idx = (noIndex ? null : IndexStore.open(cfg.dir, cfg.readOnly, cfg.log)) ?? IndexStore.memory()
  const s = new LedgerState(cfg, producerPublicKey, key, new LeafTree(hasher, idx.levels), idx)
  s.highWater = mark?.blocks ?? 0
  const claims = [mark, carried, indexClaim(idx)].filter((c): c is Claim => c !== undefined)
  let startAt: { seg: number; offset: number } | undefined
  try {
    startAt = await adoptIndex(s)
    s.store = await SegmentStore.open(cfg.dir, {
      groupCommitMs: cfg.groupCommitMs,
      segmentBytes: cfg.segmentBytes,
      log: cfg.log,
      onRecord: (r) => replay(s, r),
      readOnly: cfg.readOnly,
      startAt,
    })
  } catch (e) {
    idx.close()
    // The segments after the checkpoint do not fit the index: it cannot be trusted.
    const err = startAt && e instanceof StorageError ? new IndexUntrusted(e.message) : e
    if (err instanceof IndexUntrusted) err.claim = strongest(claims.filter((c) => c !== mark))
    throw err
  }
  const short = claims.map((c) => checkReaches({ blocks: s.blockCount, leaves: s.tree.size }, c)).find((m) => m !== undefined)
  if (short) {
    await s.store.close()
    idx.close()
    // An index's claim is about to be lost with the index: keep it, so the refusal stands.
    const lost = strongest(claims)!
    if (!cfg.readOnly && lost.blocks > s.highWater) writeHighWaterSync(cfg.dir, lost)
    throw new LedgerError(short + REFUSE, 'damaged')
  }
  if (cfg.readOnly) {
    s.key = undefined
    return s
  }
  s.durableBlocks = s.blockCount
  // A ledger from before high-water.json: its checkpoint (checked by adoptIndex) is the mark.
  if (s.ckpt && s.ckpt.blocks > s.highWater) {
    writeHighWaterSync(cfg.dir, markOf(s.ckpt))
    s.highWater = s.ckpt.blocks
  }
  commitIndex(s, true, true)
  if (s.key) startBlockTimer(s)
  await startRetention(s)
  return s
}

/**
 * Trusts the index up to its checkpoint after checking it against the segment files
 * (the checkpoint's block record, its hash, and the log root recomputed from the level
 * files); returns where scanning resumes. Throws IndexUntrusted if anything disagrees.
 */
async function adoptIndex(s: LedgerState): Promise<{ seg: number; offset: number } | undefined> {
  const idx = s.idx
  try {
    const c = idx.checkpoint()
    const damaged = idx.damaged()
    if (damaged !== undefined) throw new Error(`damaged: ${damaged}`)
    idx.adopt(c)
    if (!c) return undefined
    if (c.v !== 1 || !(c.blocks >= 1) || !(c.leaves >= 1)) throw new Error(`bad checkpoint ${JSON.stringify(c)}`)
    s.tree.restore(c.leaves)
    const brec = idx.blocks.get(c.blocks - 1)
    if (brec.readUInt32LE(0) !== c.seg || brec.readDoubleLE(8) !== c.off) throw new Error('blocks.bin disagrees with the checkpoint')
    const body = readRecordAt(s.cfg.dir, c.seg, c.off)
    const b = blockFromRecord(body)
    if (toHex(b.hash) !== c.head || b.header.height !== c.blocks - 1 || b.header.logSize !== c.leaves) throw new Error(`the block record at ${segName(c.seg)} offset ${c.off} is not the checkpoint's block`)
    if (brec.readDoubleLE(16) !== b.header.firstLeaf || brec.readDoubleLE(24) + blockNodeCount(b.header.leafCount) !== c.bnodes) throw new Error('blocks.bin disagrees with the block header')
    if (!bytesEqual(s.tree.root(), b.header.logRoot)) throw new Error('the level files do not hash to the checkpoint block\'s log root')
    b.witnesses = witnessesOf(s, b.header.height)
    s.lastBlock = b
    s.blockCount = c.blocks
    s.pendingStart = c.leaves
    s.indexed = c.leaves
    s.ckpt = c
    for (const d of idx.devices()) {
      s.devices.set(d.name, { id: d.id, dbMax: d.maxSeq, maxSeq: d.maxSeq })
      s.deviceNames[d.id] = d.name
    }
    for (const [seg, st] of idx.segStats()) s.segStats.set(seg, st)
    for (const r of idx.consents()) s.consent.apply(parseConsent(r.record), r.leaf)
    const m = idx.pruneMarker()
    if (m && !s.cfg.readOnly) {
      // Crashed between a retention rewrite and the locator update: redo the update.
      relocate(s, m.seg, m.first, parseSegment(m.seg, await readFile(join(s.cfg.dir, segName(m.seg)))).records.map((r) => r.body))
      idx.setPruneMarker(undefined)
    }
    return { seg: c.seg, offset: c.off + 8 + body.length }
  } catch (e) {
    if (e instanceof IndexUntrusted) throw e
    throw new IndexUntrusted((e as Error).message)
  }
}

function strongest(claims: Claim[]): Claim | undefined {
  return claims.reduce<Claim | undefined>((a, c) => (!a || c.blocks > a.blocks ? c : a), undefined)
}

/** Applies one segment record read on open (after the checkpoint) to the state. */
function replay(s: LedgerState, r: ScannedRecord): void {
  const type = r.body[0]
  try {
    const leaf = decodeLeafRecord(r.body)
    if (leaf) {
      const i = addLeaf(s, leaf.kind, leaf.hash, leaf.meta, r.seg, r.offset, leaf.t)
      if (leaf.consent) applyConsent(s, leaf.consent, i) // no listeners yet
    } else if (type === RecordType.Block) {
      const b = decodeBlockRecord(r.body)
      acceptBlock(s, new Uint8Array(b.header), new Uint8Array(b.sig), [], r.seg, r.offset)
      s.durableBlocks = s.blockCount
      commitIndex(s, false, true)
    } else if (type === RecordType.Witness) {
      const w = decodeWitnessRecord(r.body)
      attachWitness(s, w.height, new Uint8Array(w.pub), new Uint8Array(w.sig))
    } else throw new StorageError(`unknown record type ${type}`)
  } catch (e) {
    throw new StorageError(`segment ${r.seg} offset ${r.offset}: ${(e as Error).message}`, `seg ${r.seg}`, r.offset)
  }
}

/** Flushes everything (cutting a final block if producer) and closes. Nothing acknowledged is lost. */
export async function closeLedger(s: LedgerState): Promise<void> {
  if (s.closed) return
  if (s.blockTimer) clearInterval(s.blockTimer)
  if (s.pruneTimer) clearInterval(s.pruneTimer)
  if (s.key && s.tree.size > s.pendingStart) await cutBlock(s)
  s.closed = true
  await s.store.close()
  if (!s.cfg.readOnly) {
    s.durableBlocks = s.blockCount
    try {
      await commitIndex(s, true)
    } catch (e) {
      s.cfg.log(`ledger: index commit failed: ${(e as Error).message}`)
    }
  }
  s.idx.close()
}
