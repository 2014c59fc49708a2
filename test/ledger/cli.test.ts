import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { openLedger } from '../../ledger/ledger.ts'
import { toHex } from '../../ledger/merkle.ts'
import { ed25519Generate } from '../../ledger/crypto.ts'
import { tmp, producerKey, fakeFrame, quiet } from './helpers.ts'

const dir = tmp()
const pubHex = toHex(producerKey.publicKey)
const hashes: string[] = []

t.before(async () => {
  const l = await openLedger({ dir, producerKey, producerId: 'gw-cli', blockMaxLeaves: 8, blockIntervalMs: 60_000, ...quiet })
  for (let i = 0; i < 30; i++) hashes.push(toHex((await l.appendFrame(fakeFrame('devC', i, 120), { deviceId: 'devC', seq: i, t0: 1_700_000_000_000 + i })).leafHash))
  await l.close()
})

t.test('verify: ok, then a flipped bit is named with exit 1', async (t) => {
  const ok = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /^ok: 4 blocks, 30 leaves \(30 frames/)
  const copy = tmp()
  for (const f of ['ledger.json', 'seg-000000.log']) writeFileSync(join(copy, f), readFileSync(join(dir, f)))
  const seg = readFileSync(join(copy, 'seg-000000.log'))
  seg[Math.floor(seg.length / 2)] ^= 4
  writeFileSync(join(copy, 'seg-000000.log'), seg)
  const bad = await runCli(['ledger', 'verify', '--data', copy])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /INVALID: seg-000000\.log offset \d+: CRC mismatch .* would be leaf \d+ or block \d+/)
  t.notMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace')
  const json = await runCli(['ledger', 'verify', '--data', copy, '--json'])
  t.equal(json.code, 1)
  t.equal(JSON.parse(json.stdout).problem.kind, 'record')
})

t.test('proof and check-proof round trip; tampering and wrong keys are refused', async (t) => {
  const pr = await runCli(['ledger', 'proof', '--data', dir, '--frame', hashes[13]])
  t.equal(pr.code, 0, pr.stderr)
  const bundle = JSON.parse(pr.stdout)
  t.equal(bundle.leaf.index, 13)
  t.ok(bundle.leaf.bytes, 'frame bytes included')
  const file = join(tmp(), 'proof.json')
  writeFileSync(file, pr.stdout)
  const ok = await runCli(['ledger', 'check-proof', file, '--key', pubHex])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /leaf 13 of block 1 .*leaf bytes match/)
  const keyFile = join(tmp(), 'producer.json')
  writeFileSync(keyFile, JSON.stringify({ type: 'ed25519', id: 'gw', publicKey: pubHex }))
  t.equal((await runCli(['ledger', 'check-proof', file, '--key', keyFile])).code, 0, 'key file accepted')
  const wrong = await runCli(['ledger', 'check-proof', file, '--key', toHex(ed25519Generate().publicKey)])
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /INVALID: block 1: producer signature does not verify/)
  const tampered = structuredClone(bundle)
  tampered.inLog.path[0] = tampered.inLog.path[0].replace(/^./, (c: string) => (c === '0' ? '1' : '0'))
  writeFileSync(file, JSON.stringify(tampered))
  const bad = await runCli(['ledger', 'check-proof', file, '--key', pubHex])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /INVALID: inLog: path recomputes to [0-9a-f]{64}, but the signed header says/)
  const swapped = structuredClone(bundle)
  swapped.leaf.bytes = Buffer.from('not the frame').toString('base64')
  writeFileSync(file, JSON.stringify(swapped))
  t.match((await runCli(['ledger', 'check-proof', file, '--key', pubHex])).stderr, /leaf bytes hash to/)
  writeFileSync(file, '{nope')
  t.equal((await runCli(['ledger', 'check-proof', file, '--key', pubHex])).code, 1)
  const unknown = await runCli(['ledger', 'proof', '--data', dir, '--frame', '11'.repeat(32)])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /no leaf with hash/)
})

t.test('head and consistency', async (t) => {
  const h = await runCli(['ledger', 'head', '--data', dir, '--json'])
  t.equal(h.code, 0, h.stderr)
  const head = JSON.parse(h.stdout)
  t.equal(head.height, 3)
  t.equal(head.logSize, 30)
  t.equal(head.producerId, 'gw-cli')
  const c = await runCli(['ledger', 'consistency', '--data', dir, '--from', '8', '--to', '30'])
  t.equal(c.code, 0, c.stderr)
  const { verifyConsistency, fromHex } = await import('../../ledger/merkle.ts')
  const { hasher } = await import('../../ledger/crypto.ts')
  const j = JSON.parse(c.stdout)
  t.equal(j.root2, head.logRoot)
  verifyConsistency(hasher, j.size1, j.size2, j.proof.map(fromHex), fromHex(j.root1), fromHex(j.root2))
})

t.test('usage errors exit 2; --help exits 0', async (t) => {
  for (const args of [
    ['ledger', 'verify'],
    ['ledger', 'proof', '--data', dir, '--frame', 'xyz'],
    ['ledger', 'check-proof', '--key', pubHex],
    ['ledger', 'check-proof', 'f.json', '--key', 'nothex-nofile'],
    ['ledger', 'verify', '--data', dir, '--bogus'],
    ['ledger', 'nope'],
    ['ledger', 'consistency', '--data', dir, '--from', '9', '--to', '3'],
  ]) {
    const r = await runCli(args)
    t.equal(r.code, 2, `${args.join(' ')} -> 2 (${r.stderr.trim()})`)
  }
  for (const sub of ['verify', 'proof', 'check-proof', 'head', 'consistency']) {
    const r = await runCli(['ledger', sub, '--help'])
    t.equal(r.code, 0)
    t.match(r.stdout, /^Usage: mhealth ledger/)
  }
  const missing = await runCli(['ledger', 'verify', '--data', join(dir, 'nope')])
  t.equal(missing.code, 1)
})

t.test('consent commands: sign, show, list, id', async (t) => {
  const { ed25519Generate } = await import('../../ledger/crypto.ts')
  const { patientIdFromPublicKey } = await import('../../ledger/consent.ts')
  const k = ed25519Generate()
  const d = tmp()
  const keyFile = join(d, 'patient.json')
  writeFileSync(keyFile, JSON.stringify({ type: 'ed25519', id: 'p', publicKey: toHex(k.publicKey), privateKey: toHex(k.privateKey) }))
  const pid = patientIdFromPublicKey(k.publicKey)
  t.equal((await runCli(['consent', 'id', '--key', keyFile])).stdout.trim(), pid)
  const rec = join(d, 'grant.cbor')
  const s = await runCli(['consent', 'sign', '--key', keyFile, '--action', 'grant', '--clinician', 'dr-ada', '--scope', 'ecg:read', '--expires', '2099-01-01T00:00:00Z', '--issued', '1000', '--out', rec])
  t.equal(s.code, 0, s.stderr)
  const shown = await runCli(['consent', 'show', rec])
  t.equal(shown.code, 0, shown.stderr)
  t.match(JSON.parse(shown.stdout), { action: 'grant', patientId: pid, clinicianId: 'dr-ada', scope: 'ecg:read', expiresAt: Date.parse('2099-01-01T00:00:00Z'), signature: 'valid' })
  const bytes = readFileSync(rec)
  bytes[bytes.length - 3] ^= 1
  writeFileSync(rec, bytes)
  const bad = await runCli(['consent', 'show', rec])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /INVALID: consent record: bad signature/)
  // list from a ledger holding the grant
  const ld = tmp()
  const l = await openLedger({ dir: ld, producerKey, producerId: 'gw-c', blockIntervalMs: 60_000, ...quiet })
  const hex = (await runCli(['consent', 'sign', '--key', keyFile, '--action', 'grant', '--clinician', 'dr-bob', '--scope', '*', '--issued', '2000'])).stdout.trim()
  await l.appendConsent(Buffer.from(hex, 'hex'))
  await l.close()
  const ls = await runCli(['consent', 'list', '--data', ld, '--patient', pid])
  t.equal(ls.code, 0, ls.stderr)
  t.match(ls.stdout, /dr-bob {2}\* {2}no expiry/)
  t.equal((await runCli(['consent', 'sign', '--key', keyFile, '--action', 'maybe', '--clinician', 'x', '--scope', 'y'])).code, 2)
  t.equal((await runCli(['consent', 'sign', '--key', keyFile, '--action', 'grant', '--clinician', 'x', '--scope', 'y', '--expires', 'soon'])).code, 2)
})
