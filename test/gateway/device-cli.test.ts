/**
 * `mhealth device register|revoke|list|show` as real processes, on a data directory
 * and through a running gateway's admin API; revocation disconnects a live device.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { connectDevice, endClient, frame, publishAcked } from './helpers/devices.ts'
import { spawnGateway } from './helpers/process.ts'
import { keyFromJson } from '../../protocol/node/keyfile.ts'
import type { SimKey } from './helpers/devices.ts'

async function keygen(type: 'p256' | 'hmac', out: string): Promise<{ file: string; key: SimKey }> {
  const r = await runCli(['keygen', '--type', type, '--out', out])
  const { file } = JSON.parse(r.stdout) as { file: string }
  return { file, key: keyFromJson(JSON.parse(readFileSync(file, 'utf8'))) as SimKey }
}

t.test('device commands on a data directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const se = await keygen('p256', join(dir, 'keys'))
  const bare = await keygen('hmac', join(dir, 'keys'))

  // A mistyped --data, or a directory that holds no registry, is refused and left as it was.
  for (const wrong of [join(dir, 'dat'), join(dir, 'keys')]) {
    const r = await runCli(['device', 'register', '--data', wrong, '--key', se.file, '--patient', 'p-1'])
    t.equal(r.code, 1, `--data ${wrong}`)
    t.match(r.stderr, /no registry at .*registry\.sqlite: .* is not a gateway data directory .*--create/)
    t.notOk(existsSync(join(wrong, 'registry.sqlite')), 'no registry was created')
  }
  t.notOk(existsSync(join(dir, 'dat')), 'no directory was created')

  const r1 = await runCli(['device', 'register', '--data', dir, '--create', '--key', se.file, '--patient', 'p-1'])
  t.equal(r1.code, 0, r1.stderr)
  t.match(JSON.parse(r1.stdout), { id: se.key.id, profile: 'se', patient: 'p-1', status: 'active' })
  const r2 = await runCli(['device', 'register', '--data', dir, '--profile', 'bare', '--id', bare.key.id, '--secret', Buffer.from((bare.key as { secret: Uint8Array }).secret).toString('hex'), '--patient', 'p-2'])
  t.equal(r2.code, 0, r2.stderr)
  t.notMatch(r2.stdout, /secret/, 'the secret is never printed')

  const again = await runCli(['device', 'register', '--data', dir, '--key', se.file, '--patient', 'p-1'])
  t.equal(again.code, 1)
  t.match(again.stderr, /already registered/)

  const list = await runCli(['device', 'list', '--data', dir, '--json'])
  t.same((JSON.parse(list.stdout) as Array<{ id: string }>).map((d) => d.id).sort(), [se.key.id, bare.key.id].sort())
  const table = await runCli(['device', 'list', '--data', dir])
  t.match(table.stdout, se.key.id)

  const show = await runCli(['device', 'show', se.key.id, '--data', dir])
  t.match(JSON.parse(show.stdout), { id: se.key.id, publicKey: Buffer.from((se.key as { publicKey: Uint8Array }).publicKey).toString('hex') })

  const rev = await runCli(['device', 'revoke', bare.key.id, '--data', dir])
  t.equal(rev.code, 0)
  t.match(JSON.parse((await runCli(['device', 'show', bare.key.id, '--data', dir])).stdout), { status: 'revoked' })

  // Usage errors: exit 2, no stack.
  for (const args of [
    ['device', 'register', '--data', dir, '--patient', 'p'],
    ['device', 'register', '--data', dir, '--key', se.file],
    ['device', 'show', '--data', dir],
    ['device', 'frob'],
    ['device', 'register', '--data', dir, '--patient', 'p', '--key', se.file, '--profile', 'se'],
  ]) {
    const r = await runCli(args)
    t.equal(r.code, 2, args.join(' '))
    t.notMatch(r.stderr, /\.ts:\d+/)
  }
  const bad = await runCli(['device', 'register', '--data', dir, '--profile', 'se', '--public-key', 'abcd', '--patient', 'p'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /publicKey: expected 65 bytes/)
  const none = await runCli(['device', 'list', '--data', join(dir, 'nope')])
  t.equal(none.code, 1)
  t.match(none.stderr, /no registry/)
})

t.test('device commands against a running gateway', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const gp = await spawnGateway(dir)
  t.teardown(() => gp.kill9())
  const url = `http://127.0.0.1:${gp.ready.ports.http}`
  const mqtt = `mqtt://127.0.0.1:${gp.ready.ports.mqtt}`
  const a = await keygen('p256', join(dir, 'keys'))
  const b = await keygen('hmac', join(dir, 'keys'))
  for (const k of [a, b]) {
    const r = await runCli(['device', 'register', '--url', url, '--data', dir, '--key', k.file, '--patient', 'p-1'])
    t.equal(r.code, 0, r.stderr)
  }
  const badToken = await runCli(['device', 'list', '--url', url, '--token', 'nope'])
  t.equal(badToken.code, 1)
  t.match(badToken.stderr, /401/)

  const ca = await connectDevice(mqtt, a.key)
  await publishAcked(ca, `mhealth/dev/${a.key.id}/frames`, frame(a.key, 1))
  const closedA = new Promise((r) => ca.once('close', () => r(true)))
  const rev = await runCli(['device', 'revoke', a.key.id, '--url', url, '--data', dir])
  t.match(JSON.parse(rev.stdout), { revoked: true, disconnected: true })
  t.equal(await closedA, true, 'disconnected at once (admin API)')
  ca.end(true)
  const refused = await connectDevice(mqtt, a.key).catch((e) => e)
  t.equal((refused as { code?: number }).code, 5, 'a revoked device is refused (CONNACK 5)')

  // The registry file edited next to the running gateway: it notices and disconnects.
  const cb = await connectDevice(mqtt, b.key)
  const closedB = new Promise((r) => cb.once('close', () => r(true)))
  t.equal((await runCli(['device', 'revoke', b.key.id, '--data', dir])).code, 0)
  t.equal(await closedB, true, 'disconnected after a revocation written to the data dir')
  cb.end(true)
  const shown = JSON.parse((await runCli(['device', 'show', a.key.id, '--url', url, '--data', dir])).stdout)
  t.match(shown, { status: 'revoked', lastSeq: 1 })
  await endClient(cb)
  t.equal(await gp.stop(), 0)
})
