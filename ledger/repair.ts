/**
 * Repairing a damaged ledger directory (`mhealth ledger repair`): a torn or garbled tail,
 * blocks interleaved by two writers, a bad index. What it keeps and why:
 *
 * - The longest prefix that verifies exactly as `verify` checks it (every record whole,
 *   every leaf parsing, every block linking, hashing and signed) stays byte for byte, so
 *   proofs already handed out still hold.
 * - After the first problem, every leaf record that is still whole and parses (a frame not
 *   already kept, a consent record in order) is re-appended after the prefix; the blocks
 *   that covered them there are dropped and the producer signs new ones over them (the
 *   ledger cuts them on close, as after a crash). Witness co-signatures of kept blocks stay.
 * - A garbled stretch inside a segment is skipped by looking for the next whole record.
 * - Every file that changes is first copied to `damaged-<time>/` in the ledger directory;
 *   the index (derived data) is moved there and rebuilt from the segments.
 *
 * The caller holds the directory's writer lock (dir-lock.ts): nothing else may write here.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { hasher, sha256, ed25519Verify } from './crypto.ts'
import { CompactRange, rootOf, bytesEqual } from './merkle.ts'
import { RECORD_OVERHEAD, frameRecord, listSegments, segName } from './store.ts'
import { RecordType, decodeBlockRecord, decodeWitnessRecord } from './records.ts'
import { decodeHeader, blockToBeSigned, witnessToBeSigned, ZERO_HASH } from './block.ts'
import { ConsentState } from './consent.ts'
import { readMeta } from './meta.ts'
import { decodeLeafRecord, KIND_FRAME, KIND_PRUNED } from './leaf.ts'
import { HIGH_WATER_FILE, readHighWater } from './high-water.ts'
import { openLedger } from './ledger.ts'
import { verifyLedger, type VerifyReport } from './verify.ts'
import { LedgerError } from './types.ts'
import { toHex } from '../protocol/portable/bytes.ts'

const MAX_BODY = 64 * 1024 * 1024

/** One thing the repair did not keep, and why. */
export interface Dropped {
  segment: string
  offset: number
  what: string
  why: string
}

export interface RepairReport {
  /** Segments were rewritten (false: only the index was rebuilt). */
  rewritten: boolean
  /** Where the damaged files were copied or moved. */
  backupDir: string
  /** Blocks kept as they were (the verifying prefix). */
  keptBlocks: number
  /** Leaves kept as they were (inside the kept blocks). */
  keptLeaves: number
  /** Whole, parsing leaves from after the first problem, appended again under new blocks. */
  reappended: { frames: number; consent: number; pruned: number; alarms?: number }
  /** New blocks the producer signed over the re-appended leaves. */
  newBlocks: number
  dropped: Dropped[]
  /** What the first problem was (undefined: the segments verified; only the index was rebuilt). */
  firstProblem?: string
  /** high-water.json claimed more than the repaired ledger holds: it was moved aside. */
  highWaterDropped?: string
  /** Messages the ledger logged while reopening (index rebuild). */
  log: string[]
  /** `verifyLedger` on the result. */
  verify: VerifyReport
  frames: number
}

interface Rec {
  seg: number
  offset: number
  body: Buffer
}

/**
 * Parses a segment like store.ts's parseSegment but does not stop at damage: it skips
 * to the next offset where a whole record (length in range, CRC matching) starts.
 */
export function scanSegment(seg: number, data: Buffer): { records: Rec[]; gaps: { offset: number; bytes: number; reason: string }[] } {
  const records: Rec[] = []
  const gaps: { offset: number; bytes: number; reason: string }[] = []
  const at = (p: number): { end: number } | string => {
    if (p + RECORD_OVERHEAD > data.length) return 'truncated record header'
    const len = data.readUInt32LE(p)
    const end = p + RECORD_OVERHEAD + len
    if (len === 0 || len > MAX_BODY || end > data.length) return `record length ${len} runs past end of file`
    const got = crc32(data.subarray(p + RECORD_OVERHEAD, end), crc32(data.subarray(p, p + 4)))
    return got === data.readUInt32LE(p + 4) ? { end } : 'CRC mismatch'
  }
  let p = 0
  while (p < data.length) {
    const r = at(p)
    if (typeof r !== 'string') {
      records.push({ seg, offset: p, body: data.subarray(p + RECORD_OVERHEAD, r.end) })
      p = r.end
      continue
    }
    let q = p + 1
    while (q < data.length && typeof at(q) === 'string') q++
    gaps.push({ offset: p, bytes: q - p, reason: r })
    p = q
  }
  return { records, gaps }
}

interface Plan {
  /** Where the verifying prefix ends: records before it stay byte for byte. */
  cut: { seg: number; offset: number } | undefined
  keptBlocks: number
  keptLeaves: number
  blockHashes: string[]
  blockAt: { seg: number; offset: number; logSize: number }[]
  /** Record bodies to write after the cut, in order. */
  tail: Buffer[]
  reappended: RepairReport['reappended']
  dropped: Dropped[]
  firstProblem?: string
}

/** Walks every record once, deciding what stays, what is re-appended and what is dropped. */
async function plan(dir: string, pub: Uint8Array, producerId: string): Promise<Plan> {
  const segs = await listSegments(dir)
  const range = new CompactRange(hasher)
  const consent = new ConsentState()
  const frameKeys = new Map<string, number>()
  const p: Plan = { cut: undefined, keptBlocks: 0, keptLeaves: 0, blockHashes: [], blockAt: [], tail: [], reappended: { frames: 0, consent: 0, pruned: 0 }, dropped: [] }
  const headers: Buffer[] = []
  let prev: Uint8Array = ZERO_HASH
  let pending: { rec: Rec; kind: number; consent: boolean }[] = []
  let lastBlockEnd: { seg: number; offset: number } | undefined = segs.length ? { seg: segs[0], offset: 0 } : undefined
  let broken = false
  let leafNo = 0
  const drop = (r: { seg: number; offset: number }, what: string, why: string): void => void p.dropped.push({ segment: segName(r.seg), offset: r.offset, what, why })
  const breakAt = (why: string): void => {
    if (broken) return
    broken = true
    p.firstProblem = why
    // Leaves after the last good block are re-appended, not kept in place.
    for (const x of pending) reappend(x.rec.body, x.kind, x.consent)
    pending = []
  }
  const reappend = (body: Buffer, kind: number, isConsent: boolean): void => {
    p.tail.push(body)
    if (isConsent) p.reappended.consent++
    else if (kind === KIND_FRAME) p.reappended.frames++
    else if (kind === KIND_PRUNED) p.reappended.pruned++
    else p.reappended.alarms = (p.reappended.alarms ?? 0) + 1
  }
  for (const s of segs) {
    const data = readFileSync(join(dir, segName(s)))
    const scanned = scanSegment(s, data)
    const events: Array<{ offset: number; rec?: Rec; gap?: { bytes: number; reason: string } }> = [
      ...scanned.records.map((rec) => ({ offset: rec.offset, rec })),
      ...scanned.gaps.map((g) => ({ offset: g.offset, gap: g })),
    ].sort((a, b) => a.offset - b.offset)
    for (const ev of events) {
      const where = `${segName(s)} offset ${ev.offset}`
      if (ev.gap) {
        const torn = ev.offset + ev.gap.bytes === data.length
        drop({ seg: s, offset: ev.offset }, `${ev.gap.bytes} unreadable bytes`, `${ev.gap.reason}${torn ? ' (torn tail)' : ''}`)
        breakAt(`${where}: ${ev.gap.reason}`)
        continue
      }
      const r = ev.rec!
      const type = r.body[0]
      let leaf
      try {
        leaf = decodeLeafRecord(r.body)
      } catch (e) {
        drop(r, `leaf record (${r.body.length} bytes)`, `does not parse: ${(e as Error).message}`)
        breakAt(`${where}: leaf does not parse: ${(e as Error).message}`)
        continue
      }
      if (leaf) {
        if (leaf.meta) {
          const k = `${leaf.meta.deviceId}\0${leaf.meta.seq}`
          const first = frameKeys.get(k)
          if (first !== undefined) {
            drop(r, `frame ${leaf.meta.deviceId} seq ${leaf.meta.seq}`, `duplicate: the same device and seq is already leaf ${first}`)
            breakAt(`${where}: duplicate frame ${leaf.meta.deviceId} seq ${leaf.meta.seq}`)
            continue
          }
          frameKeys.set(k, leafNo)
        }
        if (leaf.consent) {
          try {
            consent.check(leaf.consent)
          } catch (e) {
            drop(r, 'consent record', (e as Error).message)
            breakAt(`${where}: ${(e as Error).message}`)
            continue
          }
          consent.apply(leaf.consent, leafNo)
        }
        leafNo++
        if (broken) reappend(r.body, leaf.kind, !!leaf.consent)
        else pending.push({ rec: r, kind: leaf.kind, consent: !!leaf.consent })
        continue
      }
      if (type === RecordType.Block) {
        let why: string | undefined
        let hd
        let b
        try {
          b = decodeBlockRecord(r.body)
          hd = decodeHeader(b.header)
        } catch (e) {
          why = (e as Error).message
        }
        if (broken) {
          drop(r, `block record${hd ? ` (height ${hd.height})` : ''}`, `after the first problem; its leaves are re-appended under a new block`)
          continue
        }
        const leaves = pending.map((x) => decodeLeafRecord(x.rec.body)!.hash)
        const height = p.keptBlocks
        if (!why && hd && b) {
          const size = range.size + leaves.length
          if (hd.height !== height) why = `height field says ${hd.height}, expected ${height}`
          else if (!bytesEqual(hd.prev, prev)) why = `prev does not link to block ${height - 1}`
          else if (hd.logSize !== size || hd.leafCount !== leaves.length) why = `header covers leaves ${hd.firstLeaf}..${hd.logSize - 1}, but ${leaves.length} leaves (${range.size}..${size - 1}) precede it`
          else if (!bytesEqual(rootOf(hasher, leaves), hd.blockRoot)) why = 'blockRoot does not match its leaves'
          else if (!ed25519Verify(pub, blockToBeSigned(b.header), b.sig)) why = 'producer signature does not verify'
          else if (hd.producerId !== producerId) why = `producerId '${hd.producerId}', ledger.json says '${producerId}'`
          else {
            for (const h of leaves) range.append(h)
            if (!bytesEqual(range.root(), hd.logRoot)) why = 'logRoot does not match the log'
          }
        }
        if (why) {
          drop(r, `block record${hd ? ` (height ${hd.height})` : ''}`, `${why}; its leaves are re-appended under a new block`)
          breakAt(`${where}: block ${height}: ${why}`)
          continue
        }
        prev = sha256(b!.header)
        headers.push(b!.header)
        p.blockHashes.push(toHex(prev))
        p.blockAt.push({ seg: r.seg, offset: r.offset, logSize: hd!.logSize })
        p.keptBlocks++
        p.keptLeaves = range.size
        pending = []
        lastBlockEnd = { seg: r.seg, offset: r.offset + RECORD_OVERHEAD + r.body.length }
        continue
      }
      if (type === RecordType.Witness) {
        let w
        try {
          w = decodeWitnessRecord(r.body)
        } catch (e) {
          drop(r, 'witness record', (e as Error).message)
          breakAt(`${where}: ${(e as Error).message}`)
          continue
        }
        const hb = headers[w.height]
        const why = !hb ? `co-signs block ${w.height}, which is not kept` : !ed25519Verify(w.pub, witnessToBeSigned(hb), w.sig) ? `co-signature of block ${w.height} does not verify` : undefined
        if (why) {
          drop(r, 'witness record', why)
          breakAt(`${where}: witness ${why}`)
        } else if (broken || pending.length) p.tail.push(r.body)
        else lastBlockEnd = { seg: r.seg, offset: r.offset + RECORD_OVERHEAD + r.body.length }
        continue
      }
      drop(r, `record of unknown type ${type}`, 'not a ledger record')
      breakAt(`${where}: unknown record type ${type}`)
    }
  }
  if (broken) p.cut = lastBlockEnd
  return p
}

/** Writes `data` to `path` through a temp file, fsynced, renamed into place. */
function replaceFile(path: string, parts: Buffer[]): void {
  const tmp = path + '.tmp'
  const fd = openSync(tmp, 'w', 0o600)
  try {
    for (const b of parts) writeSync(fd, b)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Repairs the ledger in `dir` with the producer key (which must be the one ledger.json
 * names). The caller holds the writer lock. Throws LedgerError if there is no ledger
 * or the key is not its producer's.
 */
export async function repairLedger(dir: string, producerKey: { privateKey: Uint8Array; publicKey: Uint8Array }, opts: { now?: Date } = {}): Promise<RepairReport> {
  const meta = await readMeta(dir)
  if (!meta) throw new LedgerError(`no ledger at ${dir} (no ledger.json)`, 'not-found')
  if (!bytesEqual(meta.producerPublicKey, producerKey.publicKey)) throw new LedgerError(`the producer key ${toHex(producerKey.publicKey)} is not this ledger's (ledger.json names ${toHex(meta.producerPublicKey)})`, 'invalid')
  const segs = await listSegments(dir)
  const p = await plan(dir, meta.producerPublicKey, meta.producerId)
  const stamp = (opts.now ?? new Date()).toISOString().replace(/[:.]/g, '-')
  const backupDir = join(dir, `damaged-${stamp}`)
  mkdirSync(backupDir, { recursive: true, mode: 0o700 })
  const rep: RepairReport = {
    rewritten: false, backupDir, keptBlocks: p.keptBlocks, keptLeaves: p.keptLeaves, reappended: p.reappended, newBlocks: 0,
    dropped: p.dropped, firstProblem: p.firstProblem, log: [], verify: undefined as unknown as VerifyReport, frames: 0,
  }
  // The index is derived from the segments: always set aside and rebuilt.
  if (existsSync(join(dir, 'index'))) renameSync(join(dir, 'index'), join(backupDir, 'index'))
  let mark
  try {
    mark = readHighWater(dir)
  } catch (e) {
    rep.highWaterDropped = (e as Error).message
  }
  if (p.cut) {
    const cut = p.cut
    // Copies first: the originals go only once their copies are durable.
    for (const s of segs.filter((n) => n >= cut.seg)) copyFileSync(join(dir, segName(s)), join(backupDir, segName(s)))
    for (const s of segs.filter((n) => n >= cut.seg)) {
      const fd = openSync(join(backupDir, segName(s)), 'r')
      fsyncSync(fd)
      closeSync(fd)
    }
    fsyncDir(backupDir)
    const head = readFileSync(join(dir, segName(cut.seg))).subarray(0, cut.offset)
    replaceFile(join(dir, segName(cut.seg)), [head, ...p.tail.map((b) => frameRecord(b))])
    for (const s of segs.filter((n) => n > cut.seg)) unlinkSync(join(dir, segName(s)))
    fsyncDir(dir)
    rep.rewritten = true
  }
  // The mark must still name a kept block; else it claims what is gone (said, and set aside).
  if (mark) {
    const b = p.blockAt[mark.blocks - 1]
    const holds = b && p.blockHashes[mark.blocks - 1] === mark.head && b.seg === mark.seg && b.offset === mark.off && b.logSize === mark.leaves
    if (!holds) rep.highWaterDropped = `${HIGH_WATER_FILE} said ${mark.blocks} blocks (${mark.leaves} leaves) were acknowledged; ${p.keptBlocks} blocks are kept as they were`
  }
  if (rep.highWaterDropped && existsSync(join(dir, HIGH_WATER_FILE))) renameSync(join(dir, HIGH_WATER_FILE), join(backupDir, HIGH_WATER_FILE))
  // Reopening replays the segments, rebuilds the index, and closing cuts signed blocks over the re-appended leaves.
  const l = await openLedger({ dir, producerKey, producerId: meta.producerId, log: (m) => void rep.log.push(m), blockIntervalMs: 3_600_000 })
  const before = l.height
  await l.close()
  const after = await (await import('./ledger.ts')).openLedgerReadOnly(dir)
  rep.newBlocks = after.height - before
  await after.close()
  rep.verify = await verifyLedger(dir)
  rep.frames = rep.verify.frames
  writeFileSync(join(backupDir, 'REPAIR.txt'), formatRepair(rep) + '\n', { mode: 0o600 })
  return rep
}

/** The report as the CLI prints it: what was kept, re-appended and dropped, and where the copies are. */
export function formatRepair(r: RepairReport): string {
  const lines: string[] = []
  lines.push(r.firstProblem ? `first problem: ${r.firstProblem}` : 'segments verified: nothing dropped')
  lines.push(`kept as they were: ${r.keptBlocks} blocks, ${r.keptLeaves} leaves`)
  const ra = r.reappended
  if (ra.frames + ra.consent + ra.pruned) lines.push(`re-appended ${ra.frames} frames, ${ra.consent} consent records, ${ra.pruned} pruned frames under ${r.newBlocks} new block(s) signed by the producer key`)
  else if (r.newBlocks) lines.push(`cut ${r.newBlocks} new block(s) over leaves after the last block`)
  if (r.dropped.length === 0) lines.push('dropped: nothing')
  else {
    lines.push(`dropped ${r.dropped.length}:`)
    for (const d of r.dropped) lines.push(`  ${d.segment} offset ${d.offset}: ${d.what}: ${d.why}`)
  }
  if (r.highWaterDropped) lines.push(`high-water mark set aside: ${r.highWaterDropped}`)
  lines.push('index rebuilt from the segments')
  lines.push(`damaged files copied to ${r.backupDir}`)
  lines.push(r.verify?.ok ? `verify: ok: ${r.verify.blocks} blocks, ${r.verify.leaves} leaves (${r.verify.frames} frames)` : `verify: INVALID: ${r.verify?.problem?.message}`)
  return lines.join('\n')
}
