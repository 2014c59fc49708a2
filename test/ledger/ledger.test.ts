import t from 'tap'
import { readFileSync, writeFileSync, appendFileSync, statSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { openLedger, LedgerError } from '../../ledger/ledger.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { checkProof } from '../../ledger/proof-check.ts'
import { sha256, ed25519Verify, hasher } from '../../ledger/crypto.ts'
import { fromHex, toHex, verifyConsistency } from '../../ledger/merkle.ts'
import { tmp, producerKey, fakeFrame, quiet, killWriterAt } from './helpers.ts'

const deps = { sha256, ed25519Verify }
const base = (dir: string, extra = {}) => ({ dir, producerKey, producerId: 'gw-test', blockIntervalMs: 60_000, ...quiet, ...extra })

t.test('append, index, blocks, proofs, reopen', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 16 }))
  const blocks: number[] = []
  l.onBlock((b) => blocks.push(b.header.height))
  const frames = Array.from({ length: 100 }, (_, i) => fakeFrame(i % 2 ? 'devB' : 'devA', i))
  const res = await Promise.all(frames.map((f, i) => l.appendFrame(f, { deviceId: i % 2 ? 'devB' : 'devA', seq: i, t0: 1000 + i })))
  t.same(res.map((r) => r.leafIndex), frames.map((_, i) => i), 'leaf indices in order')
  t.equal(toHex(res[7].leafHash), toHex(hasher.leafHash(frames[7])), 'leaf = RFC 6962 leaf hash of the exact bytes')
  t.ok(l.hasFrame('devA', 0))
  t.notOk(l.hasFrame('devA', 1))
  await t.rejects(l.appendFrame(frames[0], { deviceId: 'devA', seq: 0, t0: 1 }), { code: 'duplicate' }, 'duplicate (device, seq) refused')
  await t.rejects(l.appendFrame(new Uint8Array(0), { deviceId: 'devA', seq: 999, t0: 1 }), { code: 'invalid' })
  await t.rejects(l.appendFrame(frames[0], { deviceId: 'devA', seq: -1, t0: 1 }), { code: 'invalid' })
  const q = await l.frames({ deviceId: 'devB', from: 1010, to: 1020 })
  t.same(q.map((f) => f.seq), [11, 13, 15, 17, 19], 'query by device and time')
  t.same(q[0].bytes, frames[11])
  const g = await l.getFrame(res[42].leafHash)
  t.same(g?.bytes, frames[42])
  t.equal(g?.deviceId, 'devA')
  t.equal(await l.getFrame('00'.repeat(32)), undefined)
  t.equal(l.head().height, 5, '6 full blocks of 16 cut by size')
  t.equal(l.head().pendingLeaves, 4)
  // proof of a pending leaf cuts a block first
  const p = await l.proof(res[99].leafHash)
  t.equal(l.head().height, 6)
  const r = checkProof(JSON.parse(JSON.stringify(p)), producerKey.publicKey, deps)
  t.equal(r.leafIndex, 99)
  t.ok(r.bytesChecked)
  for (const i of [0, 15, 16, 50, 77]) checkProof(await l.proof(toHex(res[i].leafHash)), producerKey.publicKey, deps)
  // consistency between two block heads: the proof shows block 5's log extends block 1's
  const h1 = l.getBlock(1)!.header
  const h5 = l.getBlock(5)!.header
  const c = l.consistency(h1.logSize, h5.logSize).map(fromHex)
  t.doesNotThrow(() => verifyConsistency(hasher, h1.logSize, h5.logSize, c, h1.logRoot, h5.logRoot), 'consistency proof from block 1 to block 5 verifies')
  t.throws(() => verifyConsistency(hasher, h1.logSize, h5.logSize, c, h5.logRoot, h1.logRoot), 'and fails against the wrong roots')
  const head = l.head()
  await l.close()
  await t.rejects(l.appendFrame(frames[0], { deviceId: 'x', seq: 1, t0: 1 }), LedgerError)
  t.same(blocks, [0, 1, 2, 3, 4, 5, 6], 'onBlock fired for each block')
  const rep = await verifyLedger(dir)
  t.ok(rep.ok, 'verify ok')
  t.equal(rep.leaves, 100)
  t.equal(rep.blocks, 7)
  const l2 = await openLedger(base(dir))
  t.same(l2.head(), head, 'same head after reopen')
  t.ok(l2.hasFrame('devB', 99))
  t.same((await l2.getFrame(res[3].leafHash))?.bytes, frames[3])
  await l2.close()
  const other = (await import('../../ledger/crypto.ts')).ed25519Generate()
  await t.rejects(openLedger({ ...base(dir), producerKey: other }), /belongs to producer/, 'another producer key cannot open it')
})

t.test('timer cuts blocks; close cuts the last one', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockIntervalMs: 10 }))
  const got = new Promise((res) => l.onBlock(res))
  await l.appendFrame(fakeFrame('d', 1), { deviceId: 'd', seq: 1, t0: 5 })
  await got
  t.equal(l.head().height, 0)
  await l.appendFrame(fakeFrame('d', 2), { deviceId: 'd', seq: 2, t0: 6 })
  await l.close()
  const rep = await verifyLedger(dir)
  t.ok(rep.ok)
  t.equal(rep.pendingLeaves, 0, 'close covered every leaf with a block')
})

t.test('torn tail is cut back on open, with a message', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir))
  for (let i = 0; i < 10; i++) await l.appendFrame(fakeFrame('d', i), { deviceId: 'd', seq: i, t0: i })
  await l.close()
  const seg = join(dir, 'seg-000000.log')
  const good = statSync(seg).size
  // a record header claiming 500 bytes followed by only 37
  const partial = Buffer.alloc(45)
  partial.writeUInt32LE(500, 0)
  appendFileSync(seg, partial)
  const before = await verifyLedger(dir)
  t.notOk(before.ok)
  t.match(before.problem?.message, /offset \d+: record length 500 runs past end of file \(torn tail/)
  const logs: string[] = []
  const l2 = await openLedger(base(dir, { log: (m: string) => logs.push(m) }))
  t.match(logs.join('\n'), /torn tail in seg-000000\.log: cut 45 bytes/)
  t.equal(statSync(seg).size, good)
  t.equal(l2.size, 10)
  await l2.appendFrame(fakeFrame('d', 10), { deviceId: 'd', seq: 10, t0: 10 })
  await l2.close()
  t.ok((await verifyLedger(dir)).ok)
})

t.test('a flipped bit anywhere is found by verify and refused by open', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 5 }))
  for (let i = 0; i < 20; i++) await l.appendFrame(fakeFrame('d', i, 100), { deviceId: 'd', seq: i, t0: i })
  await l.close()
  const seg = join(dir, 'seg-000000.log')
  const orig = readFileSync(seg)
  // Flip one bit at many positions across the file: every one must be detected.
  let detected = 0
  const positions = Array.from({ length: 40 }, (_, k) => Math.floor(((k + 0.5) * orig.length) / 40))
  for (const pos of positions) {
    const bad = Buffer.from(orig)
    bad[pos] ^= 0x10
    writeFileSync(seg, bad)
    const rep = await verifyLedger(dir)
    if (!rep.ok && rep.problem) detected++
    t.notOk(rep.ok, `bit flip at byte ${pos} detected: ${rep.problem?.message}`)
  }
  t.equal(detected, positions.length)
  // In the middle of the file it is corruption, not a torn tail: open refuses.
  const bad = Buffer.from(orig)
  bad[Math.floor(orig.length / 3)] ^= 1
  writeFileSync(seg, bad)
  await t.rejects(openLedger(base(dir)), /offset \d+: CRC mismatch.*refusing to open/)
  writeFileSync(seg, orig)
  t.ok((await verifyLedger(dir)).ok, 'original verifies again')
})

t.test('verify names a bad block signature or link precisely', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 3 }))
  for (let i = 0; i < 9; i++) await l.appendFrame(fakeFrame('d', i, 50), { deviceId: 'd', seq: i, t0: i })
  await l.close()
  const other = (await import('../../ledger/crypto.ts')).ed25519Generate()
  const rep = await verifyLedger(dir, { publicKey: other.publicKey })
  t.notOk(rep.ok)
  t.match(rep.problem?.message, /ledger.json names producer key/)
  // rewrite ledger.json to claim the other key: block 0 signature fails
  const meta = JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8'))
  meta.producerPublicKey = Buffer.from(other.publicKey).toString('hex')
  writeFileSync(join(dir, 'ledger.json'), JSON.stringify(meta))
  const rep2 = await verifyLedger(dir)
  t.equal(rep2.problem?.block, 0)
  t.match(rep2.problem?.message, /^block 0 \(seg-000000\.log offset \d+\): producer signature does not verify/)
})

t.test('retention prunes payloads; hashes, headers and old proofs stay valid', async (t) => {
  const dir = tmp()
  const DAY = 86_400_000
  let now = 100 * DAY
  const l = await openLedger(base(dir, { blockMaxLeaves: 10, segmentBytes: 2000, retentionDays: 7, now: () => now }))
  const hashes: Uint8Array[] = []
  for (let i = 0; i < 60; i++) hashes.push((await l.appendFrame(fakeFrame('d', i, 150), { deviceId: 'd', seq: i, t0: now - 30 * DAY + i * DAY })).leafHash)
  await l.cutBlock()
  const oldProof = await l.proof(hashes[2])
  t.ok(readdirSync(dir).filter((f) => f.startsWith('seg-')).length >= 3, 'several segments')
  const r = await l.prune()
  // Frame i is stamped 30 - i days ago: frames 0-22 are past the 7 days, and all lie in closed segments.
  t.equal(r.pruned, 23, 'pruned the payloads of the 23 frames older than 7 days')
  const f2 = await l.getFrame(hashes[2])
  t.equal(f2?.bytes, null, 'old payload gone')
  t.equal(f2?.seq, 2, 'metadata stays')
  t.ok((await l.getFrame(hashes[59]))?.bytes, 'recent payload kept')
  checkProof(oldProof, producerKey.publicKey, deps)
  const fresh = await l.proof(hashes[2])
  t.equal(fresh.leaf.kind, 'pruned')
  t.equal(fresh.leaf.bytes, undefined)
  checkProof(fresh, producerKey.publicKey, deps)
  now += DAY
  await l.close()
  const rep = await verifyLedger(dir)
  t.ok(rep.ok, 'verify ok after pruning')
  t.equal(rep.pruned, r.pruned)
  const l2 = await openLedger(base(dir, { blockMaxLeaves: 10, segmentBytes: 2000, retentionDays: 7, now: () => now }))
  t.equal(l2.size, 60)
  checkProof(await l2.proof(hashes[5]), producerKey.publicKey, deps)
  await l2.close()
})

t.test('crash safety: SIGKILL mid-stream loses nothing acknowledged', async (t) => {
  const dir = tmp()
  const writer = { devices: ['dev-crash'], batch: 20, frameBytes: 200, blockMaxLeaves: 50, blockIntervalMs: 20 }
  const acked = new Map<string, string>()
  for (let round = 0; round < 2; round++) {
    const { signal, stderr } = await killWriterAt(dir, writer, acked, acked.size + 400)
    t.equal(signal, 'SIGKILL', `round ${round}: writer killed with SIGKILL (stderr: ${stderr.slice(0, 200)})`)
    const l = await openLedger(base(dir, { producerId: 'crash-test' }))
    let missing = 0
    for (const [k, hash] of acked) if (!l.hasFrame('dev-crash', Number(k.split(' ')[1])) || l.indexOf(hash) < 0) missing++
    t.equal(missing, 0, `round ${round}: all ${acked.size} acknowledged frames present after restart (ledger has ${l.size})`)
    await l.close()
    const rep = await verifyLedger(dir)
    t.ok(rep.ok, `round ${round}: verify ok after recovery: ${rep.problem?.message ?? ''}`)
  }
})

t.test('replica interrupted between a block\'s leaves and its header: leaves cut on open, sync resumes', async (t) => {
  const { frameRecord } = await import('../../ledger/store.ts')
  const A = await openLedger(base(tmp(), { blockMaxLeaves: 3 }))
  for (let i = 0; i < 6; i++) await A.appendFrame(fakeFrame('d', i, 80), { deviceId: 'd', seq: i, t0: i })
  const rdir = tmp()
  const R = await openLedger({ dir: rdir, producerPublicKey: producerKey.publicKey, producerId: 'gw-test', ...quiet })
  await R.importBlock((await A.exportBlock(0))!)
  await R.close()
  // The crash: block 1's first two leaves reached the disk, its header did not.
  const b1 = (await A.exportBlock(1))!
  for (const leaf of b1.leaves.slice(0, 2)) appendFileSync(join(rdir, 'seg-000000.log'), frameRecord(Buffer.from(leaf, 'base64')))
  const logs: string[] = []
  const R2 = await openLedger({ dir: rdir, producerPublicKey: producerKey.publicKey, producerId: 'gw-test', log: (m: string) => logs.push(m) })
  t.match(logs.join('\n'), /replica had 2 leaves without a block \(interrupted sync\); cut them/)
  t.equal(R2.size, 3)
  await R2.importBlock(b1)
  t.equal(R2.head().hash, A.head().hash)
  await R2.close()
  await A.close()
  t.ok((await verifyLedger(rdir)).ok)
})
