import t from 'tap'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

const dir = tempDir('mh-proto-cli-')

async function keygen(t: any, type: string) {
  const r = await runCli(['keygen', '--type', type, '--out', dir])
  t.equal(r.code, 0, `keygen ${type}: ${r.stderr}`)
  return JSON.parse(r.stdout) as { id: string; type: string; publicKey: string | null; file: string }
}

t.test('keygen writes a 0600 key file and prints {id, type, publicKey}', async (t) => {
  for (const type of ['ed25519', 'p256', 'hmac']) {
    const k = await keygen(t, type)
    t.equal(k.type, type)
    t.match(k.id, /^[a-z2-7]{17}$/)
    t.equal(statSync(k.file).mode & 0o777, 0o600, 'mode 0600')
    t.equal(k.publicKey === null, type === 'hmac')
    const onDisk = JSON.parse(readFileSync(k.file, 'utf8'))
    t.equal(onDisk.id, k.id)
  }
  const bad = await runCli(['keygen', '--type', 'rsa', '--out', dir])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--type must be one of ed25519, p256, hmac, got 'rsa'/)
  t.equal((await runCli(['keygen', '--type', 'p256'])).code, 2, 'missing --out')
  t.equal((await runCli(['keygen', '--help'])).code, 0)
})

t.test('keygen --out a directory that cannot be made fails at once with the reason (no 100 % CPU spin)', async (t) => {
  // Node's recursive mkdir loops forever on ENOENT under an existing parent; the timeout turns that into a failure.
  const proc = await runCli(['keygen', '--type', 'ed25519', '--out', '/proc/nope'], { timeoutMs: 30_000 })
  t.equal(proc.code, 1, proc.stderr)
  t.match(proc.stderr, /cannot create directory \/proc\/nope: ENOENT/)
  const file = join(dir, 'plain-file')
  writeFileSync(file, 'x')
  const under = await runCli(['keygen', '--type', 'hmac', '--out', join(file, 'keys')])
  t.equal(under.code, 1)
  t.match(under.stderr, /cannot create directory .*plain-file\/keys: ENOTDIR/)
  const onto = await runCli(['keygen', '--type', 'hmac', '--out', file])
  t.equal(onto.code, 1)
  t.match(onto.stderr, /plain-file is not a directory/)
  t.equal(readFileSync(file, 'utf8'), 'x', 'the file is untouched')
  const nested = await runCli(['keygen', '--type', 'hmac', '--out', join(dir, 'a', 'b', 'c')])
  t.equal(nested.code, 0, 'missing parents are still created')
})

t.test('frame make → decode → verify, for both profiles, over real files', async (t) => {
  for (const type of ['p256', 'hmac']) {
    const k = await keygen(t, type)
    const f = join(dir, `${type}.cose`)
    const made = await runCli(['frame', 'make', '--key', k.file, '--out', f, '--seconds', '2', '--seq', '5'])
    t.equal(made.code, 0, made.stderr)
    const dec = await runCli(['frame', 'decode', f])
    t.equal(dec.code, 0, dec.stderr)
    const j = JSON.parse(dec.stdout)
    t.equal(j.kid, k.id)
    t.equal(j.payload.seq, 5)
    t.equal(j.payload.ecg.length, 500)
    const ok = await runCli(['frame', 'verify', f, '--key', k.file])
    t.equal(ok.code, 0, ok.stderr)
    t.match(ok.stdout, /^valid:/)
    const keyHex = type === 'p256' ? k.publicKey! : JSON.parse(readFileSync(k.file, 'utf8')).secret
    t.equal((await runCli(['frame', 'verify', f, '--key', keyHex, '--impl', 'noble'])).code, 0, 'hex key, noble verifier')
    const viaStdin = await runCli(['frame', 'verify', '-', '--key', k.file], { input: readFileSync(f) })
    t.equal(viaStdin.code, 0, 'reads standard input')
  }
})

t.test('bad input: tampered, truncated, missing and wrong-key frames exit 1 with a reason; usage errors exit 2', async (t) => {
  const k = await keygen(t, 'p256')
  const other = await keygen(t, 'p256')
  const otherHmac = await keygen(t, 'hmac')
  const f = join(dir, 'good.cose')
  await runCli(['frame', 'make', '--key', k.file, '--out', f])
  const bytes = readFileSync(f)
  const tampered = Buffer.from(bytes)
  tampered[tampered.length - 70] ^= 1
  writeFileSync(join(dir, 'tampered.cose'), tampered)
  writeFileSync(join(dir, 'truncated.cose'), bytes.subarray(0, 100))
  const cases: Array<[string[], number, RegExp]> = [
    [['frame', 'verify', join(dir, 'tampered.cose'), '--key', k.file], 1, /invalid frame \((signature|schema|cbor)\)/],
    [['frame', 'verify', join(dir, 'truncated.cose'), '--key', k.file], 1, /invalid frame \(cbor\)/],
    [['frame', 'decode', join(dir, 'truncated.cose')], 1, /invalid frame \(cbor\): .*end/],
    [['frame', 'verify', f, '--key', other.file], 1, new RegExp(`wrong key: the frame is from device ${k.id}, but this key belongs to another device \\(${other.id}\\)`)],
    [['frame', 'verify', f, '--key', other.publicKey!], 1, /wrong key: .*belongs to another device/],
    [['frame', 'verify', f, '--key', otherHmac.file], 1, /wrong key: .*belongs to another device/],
    [['frame', 'decode', join(dir, 'nope.cose')], 1, /cannot read .*nope\.cose: ENOENT/],
    [['frame', 'verify', f, '--key', 'zz'], 2, /--key must be a key file or hex/],
    [['frame', 'verify', f, '--key', 'abcd'], 2, /65-byte P-256 public key .* got 2 bytes/],
    [['frame', 'verify', f], 2, /--key is required/],
    [['frame', 'decode'], 2, /missing argument/],
    [['frame', 'decode', f, 'extra'], 2, /unexpected argument 'extra'/],
    [['frame', 'frobnicate'], 2, /unknown command 'frame frobnicate'/],
    [['frame', 'make', '--key', k.file, '--out', f, '--seconds', '9'], 2, /--seconds must be between 1 and 5/],
    [['frame', 'verify', f, '--key', k.file, '--bogus'], 2, /Unknown option '--bogus'/],
  ]
  for (const [args, code, msg] of cases) {
    const r = await runCli(args)
    t.equal(r.code, code, `${args.join(' ')} → exit ${code}`)
    t.match(r.stderr, msg, args.join(' '))
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
  t.equal(readFileSync(f).equals(bytes), true, 'the good frame file is untouched')
})
