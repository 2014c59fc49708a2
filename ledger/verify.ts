/**
 * Full offline verification of a ledger directory: every record's CRC, every leaf
 * re-hashed, every block's links, roots and producer signature, every witness and
 * consent signature. Stops at the first problem and names it precisely.
 */
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { hasher, sha256, ed25519Verify } from './crypto.ts'
import { CompactRange, rootOf, bytesEqual } from './merkle.ts'
import { listSegments, parseSegment, segName } from './store.ts'
import { RecordType, decodeBlockRecord, decodeWitnessRecord } from './records.ts'
import { decodeHeader, blockToBeSigned, witnessToBeSigned, ZERO_HASH } from './block.ts'
import { ConsentState } from './consent.ts'
import { readMeta } from './meta.ts'
import { decodeLeafRecord, KIND_FRAME, KIND_ALARM } from './leaf.ts'
import { checkMarkBlock, checkReaches, checkSegmentList, readHighWater, readIndexClaim, segmentSize, type Claim } from './high-water.ts'
import { IndexCheck } from './index-check.ts'
import { toHex } from '../protocol/portable/bytes.ts'

export interface VerifyProblem {
  /** What is bad: a block, a leaf (frame / consent record), a raw record, or acknowledged data missing. */
  kind: 'block' | 'leaf' | 'record' | 'meta' | 'missing' | 'index'
  block?: number
  leaf?: number
  segment?: string
  offset?: number
  message: string
}

export interface VerifyReport {
  ok: boolean
  producerId?: string
  producerPublicKey?: string
  blocks: number
  leaves: number
  frames: number
  pruned: number
  consent: number
  /** Alarm-event leaves (absent when there are none, as in ledgers from before alarms). */
  alarms?: number
  witnessSignatures: number
  /** Leaves after the last block (acknowledged, to be covered by the next block). */
  pendingLeaves: number
  head?: { height: number; hash: string; logSize: number; logRoot: string }
  problem?: VerifyProblem
}

export async function verifyLedger(dir: string, opts: { publicKey?: Uint8Array } = {}): Promise<VerifyReport> {
  const rep: VerifyReport = { ok: false, blocks: 0, leaves: 0, frames: 0, pruned: 0, consent: 0, witnessSignatures: 0, pendingLeaves: 0 }
  let ix: IndexCheck | undefined
  const fail = (p: VerifyProblem): VerifyReport => (ix?.close(), (rep.problem = p), rep)
  // Nothing there is not a valid empty ledger: a mistyped path must not pass.
  if (!existsSync(dir)) return fail({ kind: 'missing', message: `no ledger at ${dir}: no such directory` })
  let meta
  try {
    meta = await readMeta(dir)
  } catch (e) {
    return fail({ kind: 'meta', message: (e as Error).message })
  }
  if (!meta && !opts.publicKey) return fail({ kind: 'meta', message: `${join(dir, 'ledger.json')} not found and no --key given: cannot check signatures` })
  const pub = opts.publicKey ?? meta!.producerPublicKey
  if (opts.publicKey && meta && !bytesEqual(opts.publicKey, meta.producerPublicKey)) return fail({ kind: 'meta', message: `ledger.json names producer key ${toHex(meta.producerPublicKey)}, not the given ${toHex(opts.publicKey)}` })
  rep.producerId = meta?.producerId
  rep.producerPublicKey = toHex(pub)

  // What the ledger acknowledged, read before the segments (a live writer raises it only
  // after its records are durable): segments that fall short of it lost data.
  let mark: Claim | undefined
  let claims: Claim[]
  try {
    mark = readHighWater(dir)
    claims = [mark, readIndexClaim(dir)].filter((c): c is Claim => c !== undefined)
  } catch (e) {
    return fail({ kind: 'missing', message: (e as Error).message })
  }
  const segs = await listSegments(dir)
  if (!meta && segs.length === 0) return fail({ kind: 'missing', message: `no ledger at ${dir}: no ledger.json and no segment files` })
  const hole = checkSegmentList(segs, (n) => segmentSize(dir, n)) ?? (mark && checkMarkBlock(dir, mark))
  if (hole) return fail({ kind: 'missing', message: hole })
  // Proofs and lookups read the index, not the segments: it must agree with them (index-check.ts).
  const opened = IndexCheck.open(dir)
  if (typeof opened === 'string') return fail({ kind: 'index', message: opened })
  ix = opened

  const range = new CompactRange(hasher)
  const consent = new ConsentState()
  let blockLeaves: Uint8Array[] = []
  let prev: Uint8Array = ZERO_HASH
  let height = 0
  const headers: Uint8Array[] = []
  for (const s of segs) {
    const name = segName(s)
    const data = await readFile(join(dir, name))
    const parsed = parseSegment(s, data)
    for (const r of parsed.records) {
      const at = { segment: name, offset: r.offset }
      const type = r.body[0]
      const leafNo = range.size
      try {
        const leaf = decodeLeafRecord(r.body)
        if (leaf) {
          if (leaf.consent) consent.check(leaf.consent)
          const badIndex = ix?.leaf(leafNo, leaf.hash, leaf.kind, s, r.offset)
          if (badIndex) return fail({ kind: 'index', leaf: leafNo, ...at, message: badIndex })
          range.append(leaf.hash)
          blockLeaves.push(leaf.hash)
          if (leaf.consent) {
            consent.apply(leaf.consent, leafNo)
            rep.consent++
          } else if (leaf.kind === KIND_FRAME) rep.frames++
          else if (leaf.kind === KIND_ALARM) rep.alarms = (rep.alarms ?? 0) + 1
          else rep.pruned++
        } else if (type === RecordType.Block) {
          const b = decodeBlockRecord(r.body)
          let hd
          try {
            hd = decodeHeader(b.header)
          } catch (e) {
            return fail({ kind: 'block', block: height, ...at, message: `block ${height}: ${(e as Error).message}` })
          }
          const bad = (m: string): VerifyReport => fail({ kind: 'block', block: height, ...at, message: `block ${height} (${name} offset ${r.offset}): ${m}` })
          if (hd.height !== height) return bad(`height field says ${hd.height}`)
          if (!bytesEqual(hd.prev, prev)) return bad(`prev ${toHex(hd.prev)} does not link to block ${height - 1} hash ${toHex(prev)}`)
          if (hd.logSize !== range.size || hd.leafCount !== blockLeaves.length) return bad(`header covers leaves ${hd.firstLeaf}..${hd.logSize - 1}, but ${blockLeaves.length} leaves (${range.size - blockLeaves.length}..${range.size - 1}) precede it`)
          const root = rootOf(hasher, blockLeaves)
          if (!bytesEqual(root, hd.blockRoot)) return bad(`blockRoot ${toHex(hd.blockRoot)}, leaves hash to ${toHex(root)}`)
          const logRoot = range.root()
          if (!bytesEqual(logRoot, hd.logRoot)) return bad(`logRoot ${toHex(hd.logRoot)}, log hashes to ${toHex(logRoot)}`)
          if (!ed25519Verify(pub, blockToBeSigned(b.header), b.sig)) return bad(`producer signature does not verify with ${toHex(pub)}`)
          if (meta && hd.producerId !== meta.producerId) return bad(`producerId '${hd.producerId}', ledger.json says '${meta.producerId}'`)
          prev = sha256(b.header)
          const badIndex = ix?.block(height, s, r.offset, hd.firstLeaf, prev, hd.logSize)
          if (badIndex) return fail({ kind: 'index', block: height, ...at, message: badIndex })
          headers.push(new Uint8Array(b.header))
          rep.head = { height, hash: toHex(prev), logSize: hd.logSize, logRoot: toHex(hd.logRoot) }
          height++
          blockLeaves = []
        } else if (type === RecordType.Witness) {
          const w = decodeWitnessRecord(r.body)
          const hb = headers[w.height]
          if (!hb) return fail({ kind: 'record', ...at, message: `${name} offset ${r.offset}: witness signature for unknown block ${w.height}` })
          if (!ed25519Verify(w.pub, witnessToBeSigned(hb), w.sig)) return fail({ kind: 'block', block: w.height, ...at, message: `block ${w.height}: witness ${toHex(w.pub)} co-signature does not verify (${name} offset ${r.offset})` })
          rep.witnessSignatures++
        } else return fail({ kind: 'record', ...at, message: `${name} offset ${r.offset}: unknown record type ${type}` })
      } catch (e) {
        return fail({ kind: 'leaf', leaf: leafNo, ...at, message: `leaf ${leafNo} (${name} offset ${r.offset}): ${(e as Error).message}` })
      }
    }
    if (parsed.damage) {
      const leafNo = range.size
      const torn = parsed.damage.torn && s === segs[segs.length - 1]
      // Cut short below what was acknowledged is loss, not a torn tail that open may cut.
      const short = torn ? claims.map((c) => checkReaches({ blocks: height, leaves: leafNo }, c)).find((m) => m !== undefined) : undefined
      if (short) return fail({ kind: 'missing', segment: name, offset: parsed.damage.offset, message: `${short} (${name} ends in a damaged record at offset ${parsed.damage.offset}: ${parsed.damage.reason})` })
      return fail({
        kind: 'record', leaf: leafNo, block: height, segment: name, offset: parsed.damage.offset,
        message: `${name} offset ${parsed.damage.offset}: ${parsed.damage.reason}${torn ? ' (torn tail: opening the ledger will cut it)' : ''}; the damaged record would be leaf ${leafNo} or block ${height}`,
      })
    }
  }
  rep.blocks = height
  rep.leaves = range.size
  rep.pendingLeaves = blockLeaves.length
  const short = claims.map((c) => checkReaches({ blocks: height, leaves: range.size }, c)).find((m) => m !== undefined)
  if (short) return fail({ kind: 'missing', message: short })
  const badLevels = ix?.levels()
  if (badLevels) return fail({ kind: 'index', message: badLevels })
  ix?.close()
  rep.ok = true
  return rep
}
