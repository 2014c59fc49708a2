/**
 * The ledger's high-water mark: the last block it has acknowledged, in
 * `DIR/high-water.json`, rewritten with each index checkpoint (tmp file, fdatasync,
 * rename) and never lowered. Unlike the index it is not derived data: it is the ledger's
 * own record of how far it got, so segments that no longer reach it (emptied, truncated,
 * deleted) are damage, never a new or shorter ledger. Open refuses such a ledger and
 * `verify` fails, both naming what was lost; restoring it is the operator's call.
 *
 * A torn tail is unaffected: the mark only moves to blocks whose records were fsynced
 * before it was written, so a crash can tear only records after it.
 */
import { closeSync, fdatasyncSync, openSync, renameSync, statSync, writeSync, readFileSync } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { readRecordAt, segName } from './store.ts'
import { blockFromRecord } from './block-index.ts'
import { IndexStore, type Checkpoint } from './index-store.ts'
import { LedgerError } from './types.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export const HIGH_WATER_FILE = 'high-water.json'

/** A block the ledger acknowledged: where its record lives and what it covers. */
export interface HighWater {
  blocks: number
  leaves: number
  /** Hex hash of block `blocks - 1`. */
  head: string
  seg: number
  off: number
}

/** A high-water mark and who claims it ("high-water.json", "the index checkpoint"). */
export interface Claim extends HighWater {
  source: string
}

export const markOf = (c: Checkpoint): HighWater => ({ blocks: c.blocks, leaves: c.leaves, head: c.head, seg: c.seg, off: c.off })

/** The stored mark, or undefined for a ledger that never acknowledged a block. Throws LedgerError('damaged') if unreadable. */
export function readHighWater(dir: string): Claim | undefined {
  const path = join(dir, HIGH_WATER_FILE)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  let j
  try {
    j = JSON.parse(text)
  } catch {
    j = undefined
  }
  const n = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0
  // Written atomically and fsynced: anything else here was changed behind the ledger's back.
  if (!(n(j?.blocks) && j.blocks >= 1 && n(j.leaves) && n(j.seg) && n(j.off) && typeof j.head === 'string' && /^[0-9a-f]{64}$/.test(j.head))) {
    throw new LedgerError(`ledger damaged: ${path} is unreadable (expected {"blocks","leaves","head","seg","off"}): cannot tell how much of the ledger was acknowledged`, 'damaged')
  }
  return { blocks: j.blocks, leaves: j.leaves, head: j.head, seg: j.seg, off: j.off, source: HIGH_WATER_FILE }
}

const text = (m: HighWater): string => JSON.stringify({ v: 1, blocks: m.blocks, leaves: m.leaves, head: m.head, seg: m.seg, off: m.off }) + '\n'

/** Replaces the mark durably (a crash leaves the old mark or the new one, both true). */
export function writeHighWaterSync(dir: string, m: HighWater): void {
  const tmp = join(dir, HIGH_WATER_FILE + '.tmp')
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, text(m))
    fdatasyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, join(dir, HIGH_WATER_FILE))
}

/** writeHighWaterSync off the event loop (the index commit's async path). */
export async function writeHighWater(dir: string, m: HighWater): Promise<void> {
  const tmp = join(dir, HIGH_WATER_FILE + '.tmp')
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(text(m))
    await fh.datasync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, HIGH_WATER_FILE))
}

/** What the index checkpoint says was acknowledged, unchecked: a shorter chain is damage, however it is found. */
export function indexClaim(idx: IndexStore): Claim | undefined {
  try {
    const c = idx.checkpoint()
    if (c && Number.isSafeInteger(c.blocks) && c.blocks >= 1) return { ...markOf(c), source: 'the index checkpoint' }
  } catch {
    // Not JSON: the index is distrusted and rebuilt; it holds the segments to nothing.
  }
  return undefined
}

/** indexClaim of DIR/index opened read-only (verify), if there is one. */
export function readIndexClaim(dir: string): Claim | undefined {
  const idx = IndexStore.open(dir, true, () => {})
  try {
    return idx ? indexClaim(idx) : undefined
  } finally {
    idx?.close()
  }
}

/** What became of segment `seg` where `off` should hold a record: "is missing", "is 0 bytes", ... */
function segmentState(dir: string, seg: number, off: number): string {
  let size: number
  try {
    size = statSync(join(dir, segName(seg))).size
  } catch {
    return `${segName(seg)} is missing`
  }
  return size <= off ? `${segName(seg)} is ${size} bytes` : `${segName(seg)} offset ${off} no longer holds that block`
}

const leaves = (n: number): string => (n === 1 ? '1 leaf' : `${n} leaves`)
const blocks = (n: number): string => (n === 1 ? '1 block' : `${n} blocks`)

const claimText = (c: Claim): string =>
  `${c.source} says ${leaves(c.leaves)} in ${blocks(c.blocks)} were acknowledged, the last (block ${c.blocks - 1}, ${c.head}) at ${segName(c.seg)} offset ${c.off}`

/**
 * Checks that the mark's block record is still whole where the mark says and is the same
 * block (one record read, before open changes anything); returns the damage, if any.
 */
export function checkMarkBlock(dir: string, m: Claim): string | undefined {
  try {
    const b = blockFromRecord(readRecordAt(dir, m.seg, m.off))
    if (b.header.height === m.blocks - 1 && b.header.logSize === m.leaves && toHex(b.hash) === m.head) return undefined
  } catch {
    // Missing, cut short, CRC or decoding: reported below by what the file looks like now.
  }
  return `ledger damaged: ${segmentState(dir, m.seg, m.off)}, but ${claimText(m)}`
}

/** Checks that the segments hold at least the claimed blocks; returns the damage, if any. */
export function checkReaches(have: { blocks: number; leaves: number }, c: Claim): string | undefined {
  if (have.blocks >= c.blocks) return undefined
  return `ledger damaged: the segment files hold ${leaves(have.leaves)} in ${blocks(have.blocks)}, but ${claimText(c)}`
}

/**
 * Segments are numbered from 0 without gaps, and only the last may be empty (retention
 * rewrites in place, never removes): a hole is a deleted or emptied file.
 */
export function checkSegmentList(segs: number[], sizeOf: (seg: number) => number): string | undefined {
  for (let i = 0; i < segs.length; i++) {
    if (segs[i] !== i) return `ledger damaged: ${segName(i)} is missing (${segName(segs[i])} exists)`
    if (i < segs.length - 1 && sizeOf(i) === 0) return `ledger damaged: ${segName(i)} is 0 bytes (${segName(segs[i + 1])} follows it)`
  }
  return undefined
}

/** Size of a segment file (0 if it vanished meanwhile). */
export function segmentSize(dir: string, seg: number): number {
  try {
    return statSync(join(dir, segName(seg))).size
  } catch {
    return 0
  }
}

/** Where damage found at open ends: the message says what to do. */
export const REFUSE = '; refusing to open (restore the ledger directory from a backup or a peer)'
