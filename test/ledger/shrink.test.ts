// A ledger whose segment files shrank below what it acknowledged (emptied, deleted,
// truncated mid-way, a middle segment gone) is damage: `mhealth ledger verify` (a real
// process) says INVALID and names it, open refuses and changes nothing, a gateway process
// on that data directory exits non-zero with the same message. A torn tail after a crash
// and a brand-new empty directory still open as before.
import t, { type Test } from 'tap'
import { appendFileSync, cpSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { openLedger, openLedgerReadOnly } from '../../ledger/ledger.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { readProducerKey } from '../../gateway/ledger-store.ts'
import { runCli } from '../helpers/cli.ts'
import { spawnGateway } from '../gateway/helpers/process.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

const base = (dir: string, extra = {}) => ({ dir, producerKey, producerId: 'gw-shrink', blockIntervalMs: 60_000, blockMaxLeaves: 10, ...quiet, ...extra })

/** 45 frames through the real API (5 blocks, the last over 5 leaves), closed cleanly. */
async function build(dir: string, extra = {}): Promise<void> {
  const l = await openLedger(base(dir, extra))
  for (let i = 0; i < 45; i++) await l.appendFrame(fakeFrame('devS', i, 200), { deviceId: 'devS', seq: i, t0: 1_700_000_000_000 + i })
  await l.close()
}

/** Every file in the directory and its size: a refused open must change none of them. */
function sizes(dir: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const f of readdirSync(dir, { recursive: true }) as string[]) if (statSync(join(dir, f)).isFile() && !/index\.db-(wal|shm)$/.test(f)) out[f] = statSync(join(dir, f)).size
  return out
}

async function refused(t: Test, dir: string, what: RegExp): Promise<void> {
  const cli = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(cli.code, 1, `verify exits 1 (stdout: ${cli.stdout.trim()})`)
  t.match(cli.stderr, /^INVALID: ledger damaged: /, 'verify says INVALID: ledger damaged')
  t.match(cli.stderr, what, 'and names what was lost')
  t.notMatch(cli.stderr + cli.stdout, /^ok:/m)
  const json = await runCli(['ledger', 'verify', '--data', dir, '--json'])
  t.equal(JSON.parse(json.stdout).problem.kind, 'missing')
  const before = sizes(dir)
  for (let round = 0; round < 2; round++) {
    // Twice: the first refusal must not leave behind a state the second would accept.
    await t.rejects(openLedger(base(dir)), { code: 'damaged', message: what }, `open ${round + 1} refuses`)
    t.same(sizes(dir), before, `open ${round + 1} changed no file`)
  }
  await t.rejects(openLedgerReadOnly(dir), { code: 'damaged', message: what }, 'a read-only open refuses too')
}

t.test('seg-000000.log emptied: verify INVALID, open refuses (it used to open empty)', async (t) => {
  const dir = tmp()
  await build(dir)
  truncateSync(join(dir, 'seg-000000.log'), 0)
  await refused(t, dir, /seg-000000\.log is 0 bytes, but high-water\.json says 45 leaves in 5 blocks were acknowledged, the last \(block 4, [0-9a-f]{64}\) at seg-000000\.log offset \d+/)
})

t.test('seg-000000.log deleted', async (t) => {
  const dir = tmp()
  await build(dir)
  unlinkSync(join(dir, 'seg-000000.log'))
  await refused(t, dir, /seg-000000\.log is missing, but high-water\.json says 45 leaves in 5 blocks/)
})

t.test('segment truncated mid-way (mid-record): not mistaken for a torn tail', async (t) => {
  const dir = tmp()
  await build(dir)
  const seg = join(dir, 'seg-000000.log')
  truncateSync(seg, Math.floor(statSync(seg).size / 2) + 3)
  await refused(t, dir, /seg-000000\.log is \d+ bytes, but high-water\.json says 45 leaves in 5 blocks/)
})

t.test('segment emptied and the index deleted too: high-water.json still holds the line', async (t) => {
  const dir = tmp()
  await build(dir)
  rmSync(join(dir, 'index'), { recursive: true })
  truncateSync(join(dir, 'seg-000000.log'), 0)
  await refused(t, dir, /seg-000000\.log is 0 bytes, but high-water\.json says 45 leaves/)
})

t.test('a ledger from before high-water.json: the index checkpoint is the claim, and the refusal survives the index rebuild', async (t) => {
  const dir = tmp()
  await build(dir)
  unlinkSync(join(dir, 'high-water.json'))
  const seg = join(dir, 'seg-000000.log')
  truncateSync(seg, Math.floor(statSync(seg).size / 3))
  const v = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(v.code, 1)
  t.match(v.stderr, /INVALID: ledger damaged: the segment files hold \d+ leaves in 1 block, but the index checkpoint says 45 leaves in 5 blocks/)
  await t.rejects(openLedger(base(dir)), { code: 'damaged', message: /but the index checkpoint says 45 leaves in 5 blocks/ })
  // The index was not trusted and is gone, but its claim was kept.
  await t.rejects(openLedger(base(dir)), { code: 'damaged', message: /high-water\.json says 45 leaves in 5 blocks/ })
})

t.test('a middle segment deleted or emptied', async (t) => {
  const dir = tmp()
  await build(dir, { segmentBytes: 1500 })
  t.ok(readdirSync(dir).filter((f) => f.endsWith('.log')).length >= 3, 'several segments')
  const copy = tmp()
  cpSync(dir, copy, { recursive: true })
  unlinkSync(join(dir, 'seg-000001.log'))
  await refused(t, dir, /seg-000001\.log is missing \(seg-000002\.log exists\)/)
  truncateSync(join(copy, 'seg-000000.log'), 0)
  await refused(t, copy, /seg-000000\.log is 0 bytes \(seg-000001\.log follows it\)/)
})

t.test('a torn tail after a crash still opens, is cut, and verifies', async (t) => {
  const dir = tmp()
  await build(dir)
  const seg = join(dir, 'seg-000000.log')
  const good = statSync(seg).size
  const partial = Buffer.alloc(45)
  partial.writeUInt32LE(500, 0)
  appendFileSync(seg, partial)
  const logs: string[] = []
  const l = await openLedger(base(dir, { log: (m: string) => logs.push(m) }))
  t.match(logs.join('\n'), /torn tail in seg-000000\.log: cut 45 bytes/)
  t.equal(statSync(seg).size, good)
  t.equal(l.size, 45)
  await l.appendFrame(fakeFrame('devS', 45), { deviceId: 'devS', seq: 45, t0: 1 })
  await l.close()
  const rep = await verifyLedger(dir)
  t.ok(rep.ok, rep.problem?.message ?? 'verify ok')
  t.equal(rep.leaves, 46)
  t.equal(JSON.parse(readFileSync(join(dir, 'high-water.json'), 'utf8')).blocks, 6, 'the mark moved up with the new block')
})

t.test('a new empty directory opens, closes and reopens empty; verify says ok', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir))
  t.equal(l.size, 0)
  await l.close()
  const l2 = await openLedger(base(dir))
  t.equal(l2.size, 0)
  await l2.close()
  const v = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(v.code, 0, v.stderr)
  t.match(v.stdout, /^ok: 0 blocks, 0 leaves/)
})

t.test('a gateway process refuses to start on an emptied ledger, with the reason and no stack trace', async (t) => {
  const data = tmp()
  // A real gateway makes its key and an empty ledger; then frames go in under its key.
  const gw = await spawnGateway(data, ['--log-level', 'warn'])
  await gw.stop()
  const key = readProducerKey(join(data, 'gateway.key'))
  const l = await openLedger({ dir: join(data, 'ledger'), producerKey: key, producerId: gw.ready.id, blockMaxLeaves: 10, ...quiet })
  for (let i = 0; i < 25; i++) await l.appendFrame(fakeFrame('devG', i), { deviceId: 'devG', seq: i, t0: 1_700_000_000_000 + i })
  await l.close()
  const again = await spawnGateway(data, ['--log-level', 'warn'])
  t.equal(await again.stop(), 0, 'it still starts on the intact ledger')
  truncateSync(join(data, 'ledger', 'seg-000000.log'), 0)
  const r = await runCli(['gateway', '--data', data, '--mqtt-port', 'auto', '--mqtts-port', '0', '--ws-port', '0', '--http-port', 'auto'], { timeoutMs: 60_000 })
  t.not(r.code, 0, 'exits non-zero')
  t.not(r.code, -1, 'on its own, not killed by the timeout')
  t.match(r.stderr, /^mhealth: ledger damaged: seg-000000\.log is 0 bytes, but high-water\.json says 25 leaves in 3 blocks/m, 'one line naming the loss (not an internal error)')
  t.notMatch(r.stdout, /"ready"/, 'never ready')
  t.notMatch(r.stderr, /at .*\.(ts|js|mjs):\d+/, 'no stack trace')
})
