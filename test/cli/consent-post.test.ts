/**
 * `mhealth consent sign` → `consent post` → `consent list`, as a clinic runs them: against a
 * real `mhealth gateway` process and its data directory.
 */
import t from 'tap'
import net from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { spawnGateway } from '../gateway/helpers/process.ts'

t.test('a signed record is posted to the gateway and listed from its data directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-consent-post-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const gp = await spawnGateway(dir)
  t.teardown(() => gp.kill9())
  const url = `http://127.0.0.1:${gp.ready.ports.http}`
  const keys = join(dir, 'keys')
  const patientKey = JSON.parse((await runCli(['keygen', '--type', 'ed25519', '--out', keys])).stdout).file as string
  const pid = (await runCli(['consent', 'id', '--key', patientKey])).stdout.trim()
  const deviceKey = JSON.parse((await runCli(['keygen', '--type', 'p256', '--out', keys])).stdout).file as string
  const reg = await runCli(['device', 'register', '--url', url, '--data', dir, '--key', deviceKey, '--patient', pid])
  t.equal(reg.code, 0, reg.stderr)

  // The hex `consent sign` prints is what `consent post -` reads.
  const hex = await runCli(['consent', 'sign', '--key', patientKey, '--action', 'grant', '--clinician', 'dr-ada', '--scope', 'ecg:read'])
  t.equal(hex.code, 0, hex.stderr)
  const posted = await runCli(['consent', 'post', '-', '--url', url], { input: hex.stdout })
  t.equal(posted.code, 0, posted.stderr)
  t.match(JSON.parse(posted.stdout), { patientId: pid, action: 'grant' })

  // The raw file `--out` writes posts as well.
  const rec = join(dir, 'bob.cbor')
  t.equal((await runCli(['consent', 'sign', '--key', patientKey, '--action', 'grant', '--clinician', 'dr-bob', '--scope', '*', '--out', rec])).code, 0)
  const posted2 = await runCli(['consent', 'post', rec, '--url', url])
  t.equal(posted2.code, 0, posted2.stderr)

  // `consent list` takes the gateway data directory, as the docs say.
  const ls = await runCli(['consent', 'list', '--data', dir, '--patient', pid])
  t.equal(ls.code, 0, ls.stderr)
  t.match(ls.stdout, /dr-ada {2}ecg:read {2}no expiry/)
  t.match(ls.stdout, /dr-bob {2}\* {2}no expiry/)

  // The same record again: the gateway's refusal, in one line.
  const again = await runCli(['consent', 'post', rec, '--url', url])
  t.equal(again.code, 1)
  t.match(again.stderr, /^mhealth: the gateway refused the record \(HTTP 409\): consent record refused: /)

  // A record of a patient with no device at this gateway.
  const strangerKey = JSON.parse((await runCli(['keygen', '--type', 'ed25519', '--out', keys])).stdout).file as string
  const stranger = join(dir, 'stranger.cbor')
  await runCli(['consent', 'sign', '--key', strangerKey, '--action', 'grant', '--clinician', 'dr-ada', '--scope', '*', '--out', stranger])
  const refused = await runCli(['consent', 'post', stranger, '--url', url])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /the gateway refused the record \(HTTP 403\): patient pt-\w+ has no device registered at this gateway/)

  // A tampered record never leaves the machine.
  const bytes = readFileSync(rec)
  bytes[bytes.length - 3] ^= 1
  const tampered = join(dir, 'tampered.cbor')
  writeFileSync(tampered, bytes)
  const bad = await runCli(['consent', 'post', tampered, '--url', url])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /INVALID: consent record: bad signature/)

  for (const [args, code, msg] of [
    [['consent', 'post', rec, '--url', 'not a url'], 2, /--url: expected the gateway's HTTP URL/],
    [['consent', 'post', rec], 2, /--url is required/],
    [['consent', 'post', join(dir, 'nope.cbor'), '--url', url], 1, /cannot read .*nope\.cbor/],
  ] as Array<[string[], number, RegExp]>) {
    const r = await runCli(args)
    t.equal(r.code, code, args.join(' '))
    t.match(r.stderr, msg)
    t.notMatch(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
  }
})

t.test('an unreachable gateway is one line', async (t) => {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  const dir = mkdtempSync(join(tmpdir(), 'mh-consent-post-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const key = JSON.parse((await runCli(['keygen', '--type', 'ed25519', '--out', dir])).stdout).file as string
  const rec = join(dir, 'r.cbor')
  await runCli(['consent', 'sign', '--key', key, '--action', 'grant', '--clinician', 'dr-ada', '--scope', '*', '--out', rec])
  const r = await runCli(['consent', 'post', rec, '--url', `http://127.0.0.1:${port}`])
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`cannot reach the gateway at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`))
})
