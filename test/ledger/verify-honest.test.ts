/**
 * Issue 13, item 3: `ledger verify` must not pass what is not there. A missing or empty
 * directory is "no ledger at ...", exit 1 (it used to print "ok: 0 blocks"); a flipped byte
 * in an index file is reported (verify used to say ok while `ledger proof` then said
 * "no leaf with hash ..."). Real ledgers on disk, the real `mhealth` binary.
 */
import t from 'tap'
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openLedger } from '../../ledger/ledger.ts'
import { toHex } from '../../ledger/merkle.ts'
import { runCli } from '../helpers/cli.ts'
import { fakeFrame, producerKey, quiet, tmp } from './helpers.ts'

const pubHex = toHex(producerKey.publicKey)

t.test('a missing or empty directory is no ledger: exit 1, never ok', async (t) => {
  const nope = join(tmp(), 'nope')
  const missing = await runCli(['ledger', 'verify', '--data', nope, '--key', pubHex])
  t.equal(missing.code, 1, 'a missing directory exits 1')
  t.match(missing.stderr, `INVALID: no ledger at ${nope}`)
  t.notMatch(missing.stdout, /^ok/m)
  const empty = tmp()
  const e = await runCli(['ledger', 'verify', '--data', empty, '--key', pubHex])
  t.equal(e.code, 1, 'an empty directory exits 1')
  t.match(e.stderr, `INVALID: no ledger at ${empty}`)
  const json = await runCli(['ledger', 'verify', '--data', empty, '--key', pubHex, '--json'])
  t.equal(JSON.parse(json.stdout).problem.kind, 'missing')
  // A gateway data directory whose ledger/ was never made is no ledger either.
  const gw = tmp()
  writeFileSync(join(gw, 'gateway.key'), '{}')
  t.equal((await runCli(['ledger', 'verify', '--data', gw])).code, 1, 'a data directory without a ledger exits 1')
})

t.test('a flipped byte in an index file is reported by verify', async (t) => {
  const dir = tmp()
  const l = await openLedger({ dir, producerId: 'gw-verify', producerKey, blockMaxLeaves: 8, blockIntervalMs: 60_000, ...quiet })
  const hashes: string[] = []
  for (let i = 0; i < 40; i++) hashes.push(toHex((await l.appendFrame(fakeFrame('devV', i, 200), { deviceId: 'devV', seq: i, t0: 1_700_000_000_000 + i })).leafHash))
  await l.close()
  const ok = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(ok.code, 0, `the intact ledger verifies (${ok.stderr.trim()})`)
  t.match(ok.stdout, /^ok: 5 blocks, 40 leaves/)

  const flip = (file: string, at: number): string => {
    const copy = tmp()
    cpSync(dir, copy, { recursive: true })
    const p = join(copy, 'index', file)
    const b = readFileSync(p)
    b[at] ^= 0x01
    writeFileSync(p, b)
    return copy
  }
  const cases: Array<[string, number, RegExp]> = [
    ['L00.bin', 3 * 32 + 7, /index damaged: .*L00\.bin holds [0-9a-f]{64} for leaf 3, but its record \(seg-000000\.log offset \d+\) hashes to [0-9a-f]{64}/],
    ['loc.bin', 17 * 40 + 8, /index damaged: .*loc\.bin says leaf 17 is kind \d at seg-000000\.log offset/],
    ['blocks.bin', 2 * 32 + 16, /index damaged: .*blocks\.bin says block 2 /],
    ['L04.bin', 1 * 32 + 5, /index damaged: .*L04\.bin entry 1 \(leaves 16\.\.31\)/],
  ]
  for (const [file, at, want] of cases) {
    const copy = flip(file, at)
    const r = await runCli(['ledger', 'verify', '--data', copy])
    t.equal(r.code, 1, `${file}: verify exits 1`)
    t.match(r.stderr, want, `${file}: verify names the file and the entry`)
    t.match(r.stderr, /remove the index directory/, `${file}: and says how to repair`)
    t.notMatch(r.stdout, /^ok/m)
  }
  // What the issue saw: verify said ok while proof could not find the leaf.
  const copy = flip('L00.bin', 3 * 32 + 7)
  const proof = await runCli(['ledger', 'proof', '--data', copy, '--frame', hashes[3]!])
  t.not(proof.code, 0, 'proof fails on the damaged index')
  t.match(proof.stderr, /no leaf with hash/, 'not finding the leaf')
  t.equal((await runCli(['ledger', 'verify', '--data', copy])).code, 1, 'and verify no longer says ok')
})

t.test('a fresh ledger (ledger.json, no blocks yet) still verifies', async (t) => {
  const dir = tmp()
  mkdirSync(dir, { recursive: true })
  const l = await openLedger({ dir, producerId: 'gw-fresh', producerKey, ...quiet })
  await l.close()
  const r = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^ok: 0 blocks/)
})
