// The on-disk index (DIR/index/): memory that does not grow with leaves, checkpoint and
// reopen without re-hashing, SIGKILL mid-index-write, deleted or damaged index files
// rebuilt from the segments and never trusted.
import t, { type Test } from 'tap'
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { openLedger, openLedgerReadOnly } from '../../ledger/ledger.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { checkProof } from '../../ledger/proof-check.ts'
import { sha256, ed25519Verify } from '../../ledger/crypto.ts'
import { toHex } from '../../ledger/merkle.ts'
import { tmp, producerKey, fakeFrame, killWriterAt } from './helpers.ts'

const deps = { sha256, ed25519Verify }
const base = (dir: string, extra = {}) => ({ dir, producerKey, producerId: 'gw-test', blockIntervalMs: 60_000, log: (_m: string) => {}, ...extra })

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
function heap(): number {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

t.test('memory does not grow with the number of leaves', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir))
  const frame = fakeFrame('x', 0, 64)
  let seq = 0
  const fill = async (n: number): Promise<void> => {
    const end = seq + n
    while (seq < end) {
      const batch = []
      for (let k = 0; k < 2000 && seq < end; k++, seq++) {
        const f = frame.slice()
        new DataView(f.buffer).setUint32(0, seq)
        batch.push(l.appendFrame(f, { deviceId: `dev-${seq % 100}`, seq, t0: 1_700_000_000_000 + seq }))
      }
      await Promise.all(batch)
    }
    await l.cutBlock()
    await l.flushIndex()
  }
  await fill(20_000)
  const at20k = heap()
  await fill(180_000)
  const at200k = heap()
  t.equal(l.unindexedLeaves, 0, 'everything indexed on disk')
  const grew = (at200k - at20k) / 1048576
  // The all-in-memory indexes grew ~40 MB over these 180k leaves (216 B/leaf). What may
  // grow here is bounded: page caches filling up (~8 MB at most), V8 and allocator noise.
  t.ok(grew < 20, `heap + array buffers grew ${grew.toFixed(1)} MB from 20k to 200k leaves`)
  t.ok(l.hasFrame('dev-7', 107) && !l.hasFrame('dev-7', 108) && !l.hasFrame('dev-7', 10_000_007), 'hasFrame answers from the on-disk index')
  checkProof(l.proofAt(12_345), producerKey.publicKey, deps)
  await l.close()
})

t.test('reopen resumes from the checkpoint; hasFrame, getFrame, frames and proofs survive', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 16 }))
  const hashes: string[] = []
  for (let i = 0; i < 300; i++) hashes.push(toHex((await l.appendFrame(fakeFrame(`d${i % 3}`, i, 120), { deviceId: `d${i % 3}`, seq: i, t0: 1000 + i })).leafHash))
  await l.close()
  t.ok(existsSync(join(dir, 'index', 'index.db')) && statSync(join(dir, 'index', 'L00.bin')).size === 300 * 32, 'index files hold every leaf')
  const logs: string[] = []
  const l2 = await openLedger(base(dir, { blockMaxLeaves: 16, log: (m: string) => logs.push(m) }))
  t.same(logs, [], 'nothing rebuilt')
  t.equal(l2.size, 300)
  t.ok(l2.hasFrame('d1', 298) && !l2.hasFrame('d1', 297) && !l2.hasFrame('d9', 1))
  t.equal((await l2.getFrame(hashes[150]))?.seq, 150)
  t.same((await l2.frames({ deviceId: 'd2', from: 1100, to: 1120 })).map((f) => f.seq), [101, 104, 107, 110, 113, 116, 119])
  for (const i of [0, 17, 150, 299]) checkProof(await l2.proof(hashes[i]), producerKey.publicKey, deps)
  const more = await l2.appendFrame(fakeFrame('d0', 300), { deviceId: 'd0', seq: 300, t0: 2000 })
  await t.rejects(l2.appendFrame(fakeFrame('d0', 3), { deviceId: 'd0', seq: 3, t0: 1 }), { code: 'duplicate' }, 'old (device, seq) still refused after restart')
  checkProof(await l2.proof(more.leafHash), producerKey.publicKey, deps)
  await l2.close()
  const ro = await openLedgerReadOnly(dir)
  t.equal(ro.size, 301)
  checkProof(await ro.proof(hashes[42]), producerKey.publicKey, deps)
  await ro.close()
  t.ok((await verifyLedger(dir)).ok)
})

t.test('a read-only open next to a live writer: index up to the checkpoint, the rest from the segments', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir, { blockMaxLeaves: 16, indexCommitMs: 3_600_000 }))
  const hashes: string[] = []
  const add = async (n: number): Promise<void> => {
    for (let k = 0; k < n; k++) {
      const i = hashes.length
      hashes.push(toHex((await l.appendFrame(fakeFrame('w', i, 80), { deviceId: 'w', seq: i, t0: i })).leafHash))
    }
    await l.cutBlock()
  }
  await add(100)
  await l.flushIndex()
  await add(500) // past heights the writer's index files have never held
  t.equal(l.unindexedLeaves, 500)
  const ro = await openLedgerReadOnly(dir)
  t.equal(ro.size, 600)
  t.equal(ro.head().hash, l.head().hash)
  for (const i of [3, 99, 100, 377, 599]) checkProof(await ro.proof(hashes[i]), producerKey.publicKey, deps)
  t.ok(ro.hasFrame('w', 50) && ro.hasFrame('w', 550) && !ro.hasFrame('w', 600))
  t.same(ro.consistency(100, 600), l.consistency(100, 600))
  await ro.close()
  await l.close()
})

t.test('SIGKILL during index writes: reopen self-heals, nothing acknowledged is lost', async (t) => {
  const dir = tmp()
  // An index checkpoint after every durable block (indexCommitMs 0): the kill often lands in one.
  const writer = { devices: ['dev-a', 'dev-b', 'dev-c'], batch: 40, frameBytes: 100, blockMaxLeaves: 64, blockIntervalMs: 10, indexCommitMs: 0 }
  const acked = new Map<string, string>()
  for (let round = 0; round < 4; round++) {
    const { signal, stderr } = await killWriterAt(dir, writer, acked, acked.size + 1500 + round * 700)
    t.equal(signal, 'SIGKILL', `round ${round}: writer killed (stderr: ${stderr.slice(0, 300)})`)
    const l = await openLedger(base(dir, { producerId: 'crash-test' }))
    let missing = 0
    for (const [k, hash] of acked) {
      const [dev, seq] = k.split(' ')
      if (!l.hasFrame(dev, Number(seq)) || l.indexOf(hash) < 0) missing++
    }
    t.equal(missing, 0, `round ${round}: all ${acked.size} acknowledged frames found after restart (ledger has ${l.size})`)
    const sample = [...acked.values()].filter((_, i) => i % 97 === 0)
    for (const h of sample) checkProof(await l.proof(h), producerKey.publicKey, deps)
    await l.close()
  }
  const rep = await verifyLedger(dir)
  t.ok(rep.ok, `verify ok: ${rep.problem?.message ?? ''}`)
})

async function build(dir: string, n = 200): Promise<string[]> {
  const l = await openLedger(base(dir, { blockMaxLeaves: 32 }))
  const hashes: string[] = []
  for (let i = 0; i < n; i++) hashes.push(toHex((await l.appendFrame(fakeFrame('dev', i, 100), { deviceId: 'dev', seq: i, t0: 5000 + i })).leafHash))
  await l.close()
  return hashes
}

async function reopenChecks(t: Test, dir: string, hashes: string[], expectLog: RegExp | null): Promise<void> {
  const logs: string[] = []
  const l = await openLedger(base(dir, { blockMaxLeaves: 32, log: (m: string) => logs.push(m) }))
  if (expectLog) t.match(logs.join('\n'), expectLog, 'says why the index is rebuilt')
  t.equal(l.size, hashes.length)
  for (const i of [0, 33, 100, hashes.length - 1]) {
    checkProof(await l.proof(hashes[i]), producerKey.publicKey, deps)
    t.equal((await l.getFrame(hashes[i]))?.seq, i)
  }
  t.ok(l.hasFrame('dev', 5) && !l.hasFrame('dev', hashes.length))
  await l.close()
}

t.test('a deleted index (or a ledger written before the index existed) is rebuilt', async (t) => {
  const dir = tmp()
  const hashes = await build(dir)
  rmSync(join(dir, 'index'), { recursive: true })
  await reopenChecks(t, dir, hashes, null)
  rmSync(join(dir, 'index', 'L00.bin'))
  await reopenChecks(t, dir, hashes, /not trusted \(L0 holds 0 records, checkpoint needs 200\)/)
  rmSync(join(dir, 'index', 'blocks.bin'))
  await reopenChecks(t, dir, hashes, /not trusted/)
})

t.test('damaged index files are rebuilt, not trusted', async (t) => {
  const flip = (path: string, at: number): void => {
    const fd = openSync(path, 'r+')
    const b = Buffer.alloc(1)
    readSync(fd, b, 0, 1, at)
    b[0] ^= 0x40
    writeSync(fd, b, 0, 1, at)
    closeSync(fd)
  }
  await t.test('database overwritten with garbage', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    for (const f of ['index.db-wal', 'index.db-shm']) rmSync(join(dir, 'index', f), { force: true })
    writeFileSync(join(dir, 'index', 'index.db'), Buffer.alloc(8192, 0x5a))
    await reopenChecks(t, dir, hashes, /index .* (unusable|not trusted)/)
  })
  await t.test('a checkpoint that lies (or is not JSON) is not trusted', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    const { default: Database } = await import('better-sqlite3')
    for (const v of ['{"v":1,"leaves":64,"blocks":2,"bnodes":8,"seg":0,"off":0,"head":"00"}', 'not json']) {
      const db = new Database(join(dir, 'index', 'index.db'))
      db.prepare(`UPDATE meta SET v = ? WHERE k = 'ckpt'`).run(v)
      db.close()
      await reopenChecks(t, dir, hashes, /not trusted/)
    }
  })
  await t.test('the last leaf hash flipped: the log root check catches it at open', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    flip(join(dir, 'index', 'L00.bin'), 199 * 32 + 5)
    await reopenChecks(t, dir, hashes, /do not hash to the checkpoint block's log root/)
  })
  await t.test('a leaf hash in the middle flipped: its proof is refused, the next open rebuilds', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    flip(join(dir, 'index', 'L00.bin'), 40 * 32 + 3)
    const logs: string[] = []
    const l = await openLedger(base(dir, { blockMaxLeaves: 32, log: (m: string) => logs.push(m) }))
    await t.rejects(l.proof(hashes[41]), /index damaged/, 'a proof over the damaged hash is refused, never handed out')
    await l.close()
    await reopenChecks(t, dir, hashes, /not trusted|unusable/)
  })
  await t.test('a locator flipped: getFrame refuses it rather than return another frame', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    flip(join(dir, 'index', 'loc.bin'), 60 * 40 + 9) // offset field of leaf 60
    const l = await openLedger(base(dir, { blockMaxLeaves: 32 }))
    await t.rejects(l.getFrame(hashes[60]), /index damaged/)
    await l.close()
    await reopenChecks(t, dir, hashes, null)
  })
  await t.test('stale records after the checkpoint (a crash between file writes and the commit) are cut', async (t) => {
    const dir = tmp()
    const hashes = await build(dir)
    for (const f of ['L00.bin', 'loc.bin', 'blocks.bin', 'bnodes.bin', 'L04.bin']) appendFileSync(join(dir, 'index', f), Buffer.alloc(4 * 40, 0xee))
    await reopenChecks(t, dir, hashes, null)
    t.equal(statSync(join(dir, 'index', 'L00.bin')).size, 200 * 32)
    t.ok(readFileSync(join(dir, 'index', 'loc.bin')).length === 200 * 40)
  })
})

t.test('retention interrupted between the segment rewrite and the locator update: redone on open', async (t) => {
  const dir = tmp()
  const DAY = 86_400_000
  const now = 100 * DAY
  const opts = { blockMaxLeaves: 10, segmentBytes: 2000 }
  const l = await openLedger(base(dir, opts))
  const hashes: string[] = []
  // Only the first segment's frames are old.
  for (let i = 0; i < 40; i++) hashes.push(toHex((await l.appendFrame(fakeFrame('d', i, 150), { deviceId: 'd', seq: i, t0: i < 8 ? now - 30 * DAY : now })).leafHash))
  await l.close()
  const stale = { loc: readFileSync(join(dir, 'index', 'loc.bin')), blocks: readFileSync(join(dir, 'index', 'blocks.bin')) }
  const seg0 = readFileSync(join(dir, 'seg-000000.log'))
  const p = await openLedger(base(dir, { ...opts, retentionDays: 7, now: () => now }))
  t.ok(readFileSync(join(dir, 'seg-000000.log')).length < seg0.length, 'segment 0 rewritten by retention at open')
  await p.close()
  // The crash: the rewritten segment was renamed, the locators still point into the old layout.
  writeFileSync(join(dir, 'index', 'loc.bin'), stale.loc)
  writeFileSync(join(dir, 'index', 'blocks.bin'), stale.blocks)
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(join(dir, 'index', 'index.db'))
  db.prepare(`INSERT OR REPLACE INTO meta(k, v) VALUES ('prune', ?)`).run(JSON.stringify({ seg: 0, first: 0 }))
  db.close()
  const r = await openLedger(base(dir, opts))
  for (const i of [0, 5, 7]) {
    const f = await r.getFrame(hashes[i])
    t.equal(f?.bytes, null, `leaf ${i}: pruned payload, located in the rewritten segment`)
    checkProof(await r.proof(hashes[i]), producerKey.publicKey, deps)
  }
  for (const i of [8, 20, 39]) t.ok((await r.getFrame(hashes[i]))?.bytes, `leaf ${i}: payload kept`)
  await r.close()
  t.ok((await verifyLedger(dir)).ok)
})
