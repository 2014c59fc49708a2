/**
 * Issue 13, item 2: `mhealth ledger repair`. Real damaged ledgers on disk (a torn
 * acknowledged tail, garbled bytes mid-segment, two writers interleaving blocks, a flipped
 * index byte), the real `mhealth` binary: after repair `ledger verify` passes, every frame
 * still whole is there, the report says what was dropped, and the originals are copied.
 */
import t from 'tap'
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync, truncateSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { openLedger, openLedgerReadOnly } from '../../ledger/ledger.ts'
import { toHex } from '../../ledger/merkle.ts'
import { runCli } from '../helpers/cli.ts'
import { fakeFrame, producerKey, quiet, tmp } from './helpers.ts'

const T0 = 1_700_000_000_000

/** A gateway-shaped data directory: gateway.key and a ledger of `n` frames in ledger/ (blocks of 8). */
async function gatewayDir(n: number): Promise<{ data: string; ledger: string; hashes: string[] }> {
  const data = tmp()
  writeFileSync(join(data, 'gateway.key'), JSON.stringify({ type: 'ed25519', id: 'gw-repair', publicKey: toHex(producerKey.publicKey), privateKey: toHex(producerKey.privateKey) }) + '\n', { mode: 0o600 })
  const ledger = join(data, 'ledger')
  const l = await openLedger({ dir: ledger, producerId: 'gw-repair', producerKey, blockMaxLeaves: 8, blockIntervalMs: 60_000, ...quiet })
  const hashes: string[] = []
  for (let i = 0; i < n; i++) hashes.push(toHex((await l.appendFrame(fakeFrame('devR', i, 200), { deviceId: 'devR', seq: i, t0: T0 + i })).leafHash))
  await l.close()
  return { data, ledger, hashes }
}

async function framesIn(dir: string): Promise<Set<string>> {
  const l = await openLedgerReadOnly(dir)
  const out = new Set<string>()
  for (let i = 0; i < l.size; i++) out.add((await l.frameAt(i)).leafHash)
  await l.close()
  return out
}

function backupOf(ledger: string): string {
  const d = readdirSync(ledger).filter((n) => n.startsWith('damaged-'))
  if (d.length !== 1) throw new Error(`expected one damaged-* directory in ${ledger}, found ${d.join(', ')}`)
  return join(ledger, d[0])
}

const seg0 = 'seg-000000.log'

t.test('a torn acknowledged tail: frames before the tear kept, verify passes, original copied', async (t) => {
  const { data, ledger, hashes } = await gatewayDir(40)
  const path = join(ledger, seg0)
  const orig = readFileSync(path)
  // Tear inside the last block's record: its 8 leaves are whole, the block that covered them is not.
  truncateSync(path, orig.length - 30)
  const before = await runCli(['ledger', 'verify', '--data', data])
  t.equal(before.code, 1, 'verify fails on the torn ledger')
  const r = await runCli(['ledger', 'repair', '--data', data])
  t.equal(r.code, 0, `repair exits 0 (${r.stderr})`)
  t.match(r.stdout, /kept as they were: 4 blocks, 32 leaves/)
  t.match(r.stdout, /re-appended 8 frames, 0 consent records, 0 pruned frames under 1 new block/)
  t.match(r.stdout, /seg-000000\.log offset \d+: \d+ unreadable bytes: record length \d+ runs past end of file \(torn tail\)/)
  t.match(r.stdout, /high-water mark set aside: high-water\.json said 5 blocks \(40 leaves\)/)
  t.match(r.stdout, /damaged files copied to .*damaged-/)
  const v = await runCli(['ledger', 'verify', '--data', data])
  t.equal(v.code, 0, `verify passes after repair (${v.stderr})`)
  t.match(v.stdout, /^ok: 5 blocks, 40 leaves \(40 frames/)
  t.same([...(await framesIn(ledger))].sort(), [...hashes].sort(), 'all 40 frames are there')
  const bk = backupOf(ledger)
  t.same(readFileSync(join(bk, seg0)), orig.subarray(0, orig.length - 30), 'the torn segment is copied as it was')
  t.ok(existsSync(join(bk, 'high-water.json')) && existsSync(join(bk, 'index')) && existsSync(join(bk, 'REPAIR.txt')), 'mark, index and report are in the backup')
  t.equal(statSync(join(ledger, seg0)).mode & 0o777, 0o600, 'the rewritten segment is private')
  // The repaired ledger opens for writing and takes more frames.
  const l = await openLedger({ dir: ledger, producerId: 'gw-repair', producerKey, ...quiet })
  await l.appendFrame(fakeFrame('devR', 40, 200), { deviceId: 'devR', seq: 40, t0: T0 + 40 })
  await l.close()
  t.equal((await runCli(['ledger', 'verify', '--data', data])).code, 0, 'still verifies after a new frame')
})

t.test('garbled bytes mid-segment: the damaged frame is dropped and named, every other frame kept', async (t) => {
  const { data, ledger, hashes } = await gatewayDir(40)
  const path = join(ledger, seg0)
  const buf = readFileSync(path)
  // Find leaf 10 (block 1) by walking records, then garble its body.
  let p = 0
  let leaf = 0
  let at = -1
  while (p < buf.length) {
    const len = buf.readUInt32LE(p)
    if (buf[p + 8] === 1) {
      if (leaf === 10) at = p
      leaf++
    }
    p += 8 + len
  }
  buf.fill(0xa5, at + 40, at + 60)
  writeFileSync(path, buf)
  t.equal((await runCli(['ledger', 'verify', '--data', ledger])).code, 1, 'verify fails on the garbled ledger')
  const r = await runCli(['ledger', 'repair', '--data', ledger])
  t.equal(r.code, 0, `repair of the ledger directory exits 0 (${r.stderr})`)
  t.match(r.stdout, new RegExp(`seg-000000\\.log offset ${at}: \\d+ unreadable bytes: CRC mismatch`))
  t.match(r.stdout, /kept as they were: 1 blocks, 8 leaves/)
  t.match(r.stdout, /re-appended 31 frames/)
  t.match(r.stdout, /block record \(height 1\): after the first problem; its leaves are re-appended under a new block/)
  const v = await runCli(['ledger', 'verify', '--data', data])
  t.equal(v.code, 0, `verify passes after repair (${v.stderr})`)
  t.match(v.stdout, /39 leaves \(39 frames/)
  const got = await framesIn(ledger)
  t.equal(got.size, 39)
  t.notOk(got.has(hashes[10]), 'the garbled frame is gone')
  t.ok(hashes.filter((_, i) => i !== 10).every((h) => got.has(h)), 'every other frame is kept')
  t.same(readFileSync(join(backupOf(ledger), seg0)), buf, 'the garbled segment is copied as it was')
})

t.test('two writers interleaving blocks: every distinct frame kept under re-signed blocks', async (t) => {
  const { data, ledger, hashes } = await gatewayDir(16)
  // Two ledgers on one directory, as two gateways without the lock would.
  const o = { dir: ledger, producerId: 'gw-repair', producerKey, blockMaxLeaves: 1000, blockIntervalMs: 3_600_000, ...quiet }
  const a = await openLedger(o)
  const b = await openLedger(o)
  const all = new Set(hashes)
  const add = async (l: typeof a, dev: string, seq: number): Promise<void> => void all.add(toHex((await l.appendFrame(fakeFrame(dev, seq, 200), { deviceId: dev, seq, t0: T0 + seq })).leafHash))
  for (let i = 0; i < 5; i++) {
    await add(a, 'devA', i)
    await add(b, 'devB', i)
  }
  await a.cutBlock()
  for (let i = 5; i < 8; i++) await add(b, 'devB', i)
  await b.cutBlock()
  for (let i = 5; i < 9; i++) await add(a, 'devA', i)
  await a.close()
  await b.close()
  const before = await runCli(['ledger', 'verify', '--data', data])
  t.equal(before.code, 1, 'verify fails on the interleaved ledger')
  t.match(before.stderr, /INVALID: /)
  const r = await runCli(['ledger', 'repair', '--data', data])
  t.equal(r.code, 0, `repair exits 0 (${r.stderr})`)
  t.match(r.stdout, /kept as they were: 2 blocks, 16 leaves/)
  t.match(r.stdout, /re-appended 17 frames/)
  t.match(r.stdout, /block record \(height 2\)/)
  const v = await runCli(['ledger', 'verify', '--data', data])
  t.equal(v.code, 0, `verify passes after repair (${v.stderr})`)
  t.match(v.stdout, /33 leaves \(33 frames/)
  t.same([...(await framesIn(ledger))].sort(), [...all].sort(), 'all 33 distinct frames are there')
})

t.test('a flipped index byte: index rebuilt, segments untouched', async (t) => {
  const { data, ledger } = await gatewayDir(24)
  const segBefore = readFileSync(join(ledger, seg0))
  const p = join(ledger, 'index', 'L00.bin')
  const b = readFileSync(p)
  b[5 * 32 + 3] ^= 1
  writeFileSync(p, b)
  const before = await runCli(['ledger', 'verify', '--data', data])
  t.equal(before.code, 1)
  t.match(before.stderr, /index damaged/)
  const r = await runCli(['ledger', 'repair', '--data', data])
  t.equal(r.code, 0, `repair exits 0 (${r.stderr})`)
  t.match(r.stdout, /segments verified: nothing dropped/)
  t.match(r.stdout, /dropped: nothing/)
  t.match(r.stdout, /index rebuilt/)
  t.same(readFileSync(join(ledger, seg0)), segBefore, 'the segment is untouched')
  t.same(readFileSync(join(backupOf(ledger), 'index', 'L00.bin')), b, 'the damaged index is kept in the backup')
  const v = await runCli(['ledger', 'verify', '--data', data])
  t.equal(v.code, 0, `verify passes after repair (${v.stderr})`)
  t.match(v.stdout, /^ok: 3 blocks, 24 leaves/)
})

t.test('refused while a writer holds the data directory; clear errors for no ledger or a foreign key', async (t) => {
  const { data, ledger } = await gatewayDir(8)
  const copy = tmp()
  cpSync(data, copy, { recursive: true })
  // A live holder: this test process, as a gateway would hold it.
  writeFileSync(join(data, 'lock'), JSON.stringify({ pid: process.pid, since: new Date().toISOString(), command: `mhealth gateway --data ${data}` }) + '\n')
  const r = await runCli(['ledger', 'repair', '--data', data])
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`data directory ${data} is in use by a running gateway \\(pid ${process.pid}`))
  t.notOk(readdirSync(ledger).some((n) => n.startsWith('damaged-')), 'nothing touched')
  const none = await runCli(['ledger', 'repair', '--data', join(copy, 'nope')])
  t.equal(none.code, 1)
  t.match(none.stderr, /no ledger at/)
  const other = tmp()
  writeFileSync(join(other, 'k.key'), JSON.stringify({ type: 'ed25519', publicKey: 'ab'.repeat(32), privateKey: 'cd'.repeat(32) }))
  const foreign = await runCli(['ledger', 'repair', '--data', join(copy, 'ledger'), '--producer-key', join(other, 'k.key')])
  t.equal(foreign.code, 1)
  t.match(foreign.stderr, /is not this ledger's/)
})
