/**
 * Device lifecycle on a real gateway (real sockets, real MQTT clients, the real registry
 * file, `mhealth` as child processes): move a connected board to another patient, revoke
 * then reactivate, delete (refused from then on, its ID retired, its frames still verify
 * in the ledger with `ledger verify`, `ledger proof` + `check-proof` and `frame verify`).
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { nextEvent, waitFor } from '../helpers/wait.ts'
import { cleanup, startTestGateway } from './helpers/gateway.ts'
import { spawnGateway } from './helpers/process.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim, subscribe } from './helpers/devices.ts'
import { leafHashHex } from '../../ledger/leaf.ts'

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`

/** A clinician's live feed of one patient: every frame it delivers, by seq order of arrival. */
async function watch(mqttUrl: string, user: string, patient: string): Promise<{ c: MqttClient; got: Buffer[]; granted: number }> {
  const c = await connect(mqttUrl, { clientId: `u:${user}`, username: user, password: 'long-enough-pw' })
  const granted = await subscribe(c, `mhealth/patient/${patient}/frames`)
  const got: Buffer[] = []
  c.on('message', (_topic, payload) => got.push(payload))
  return { c, got, granted }
}

t.test('move: a connected board follows, over the admin API and through the registry file', async (t) => {
  const gw = await startTestGateway()
  t.teardown(() => cleanup(gw))
  const key = newDeviceKey('se')
  registerSim(gw.registry, key, 'pt-a')
  for (const [user, patient] of [['dr.a', 'pt-a'], ['dr.b', 'pt-b'], ['dr.c', 'pt-c']] as const) {
    gw.registry.addUser(user, 'clinician', 'long-enough-pw')
    gw.consent.grant(patient, user)
  }
  const [a, b, c] = await Promise.all([watch(gw.mqttUrl, 'dr.a', 'pt-a'), watch(gw.mqttUrl, 'dr.b', 'pt-b'), watch(gw.mqttUrl, 'dr.c', 'pt-c')])
  for (const w of [a, b, c]) {
    t.teardown(() => endClient(w.c))
    t.equal(w.granted, 0, 'a clinician with consent may watch the patient')
  }
  const dev = await connectDevice(gw.mqttUrl, key)
  t.teardown(() => endClient(dev))
  await publishAcked(dev, framesTopic(key.id), frame(key, 1))
  await waitFor(() => a.got.length === 1, 'frame 1 on pt-a')

  // Over the admin API: effective before the answer.
  const url = gw.httpUrl
  const r = await runCli(['device', 'move', '--device', key.id, '--patient', 'pt-b', '--url', url, '--token', gw.identity.adminToken])
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { id: key.id, from: 'pt-a', to: 'pt-b', changed: true })
  await publishAcked(dev, framesTopic(key.id), frame(key, 2))
  await waitFor(() => b.got.length === 1, 'frame 2 on pt-b')
  t.equal(a.got.length, 1, 'the old patient\'s clinician no longer gets the board\'s frames')
  t.ok(gw.logs.some((e) => e.msg === 'device moved' && e.deviceId === key.id && e.to === 'pt-b' && e.connected === true), 'logged')

  // Through the registry file (a CLI beside the gateway): the gateway picks it up on its own.
  const r2 = await runCli(['device', 'move', key.id, '--patient', 'pt-c', '--data', gw.dir])
  t.equal(r2.code, 0, r2.stderr)
  await waitFor(() => gw.logs.some((e) => e.msg === 'device moved: live session follows' && e.to === 'pt-c'), 'the gateway to notice the move')
  await publishAcked(dev, framesTopic(key.id), frame(key, 3))
  await waitFor(() => c.got.length === 1, 'frame 3 on pt-c')
  t.equal(b.got.length, 1)

  const bad = await runCli(['device', 'move', '--device', key.id, '--patient', 'no spaces', '--data', gw.dir])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /patient: expected 1-64 characters/)
  const missing = await runCli(['device', 'move', '--patient', 'pt-d', '--data', gw.dir])
  t.equal(missing.code, 2, 'no device named: usage error')
  const hist = await runCli(['device', 'history', key.id, '--data', gw.dir])
  t.same(hist.stdout.trim().split('\n').map((l) => JSON.parse(l).action), ['registered', 'moved', 'moved'])
})

t.test('revoke, reactivate, delete on a real gateway process with its ledger', async (t) => {
  const dir = tempDir('mh-devlife-')
  const gp = await spawnGateway(dir)
  t.teardown(() => gp.kill9())
  const url = `http://127.0.0.1:${gp.ready.ports.http}`
  const mqtt = `mqtt://127.0.0.1:${gp.ready.ports.mqtt}`
  const key = newDeviceKey('se')
  const pub = Buffer.from((key as { publicKey: Uint8Array }).publicKey).toString('hex')
  const reg = await runCli(['device', 'register', '--data', dir, '--profile', 'se', '--public-key', pub, '--patient', 'pt-1'])
  t.equal(reg.code, 0, reg.stderr)
  const sent = [frame(key, 1), frame(key, 2)]

  // revoke -> refused -> reactivate (CLI on the data dir) -> connects and is stored again
  let dev = await connectDevice(mqtt, key)
  await publishAcked(dev, framesTopic(key.id), sent[0]!)
  const closed = nextEvent(dev, 'close', 'the revoked board to be disconnected')
  t.equal((await runCli(['device', 'revoke', key.id, '--data', dir])).code, 0)
  await closed
  dev.end(true)
  t.equal(((await connectDevice(mqtt, key).catch((e) => e)) as { code?: number }).code, 5, 'revoked: CONNACK 5')
  const re = await runCli(['device', 'reactivate', '--device', key.id, '--data', dir])
  t.equal(re.code, 0, re.stderr)
  t.match(JSON.parse(re.stdout), { id: key.id, reactivated: true, wasActive: false })
  dev = await connectDevice(mqtt, key)
  await publishAcked(dev, framesTopic(key.id), sent[1]!)
  t.match(JSON.parse((await runCli(['device', 'show', key.id, '--data', dir])).stdout), { status: 'active', lastSeq: 2 })

  // delete over the admin API: disconnected now, refused from then on
  const gone = nextEvent(dev, 'close', 'the deleted board to be disconnected')
  const del = await runCli(['device', 'delete', '--device', key.id, '--url', url, '--data', dir])
  t.equal(del.code, 0, del.stderr)
  t.match(JSON.parse(del.stdout), { id: key.id, deleted: true, alreadyDeleted: false, disconnected: true })
  await gone
  dev.end(true)
  t.equal(((await connectDevice(mqtt, key).catch((e) => e)) as { code?: number }).code, 5, 'deleted: CONNACK 5')
  const back = await runCli(['device', 'reactivate', key.id, '--url', url, '--data', dir])
  t.equal(back.code, 1)
  t.match(back.stderr, /was deleted; a deleted device cannot be reactivated/)
  const again = await runCli(['device', 'register', '--data', dir, '--profile', 'se', '--public-key', pub, '--patient', 'pt-2'])
  t.equal(again.code, 1, 'its ID stays retired')
  t.match(again.stderr, /was deleted; its ID stays retired/)
  // The tombstone still shows the key the old frames verify with.
  const shown = JSON.parse((await runCli(['device', 'show', key.id, '--url', url, '--data', dir])).stdout)
  t.match(shown, { id: key.id, status: 'deleted', publicKey: pub })
  const listed = JSON.parse((await runCli(['device', 'list', '--json', '--data', dir])).stdout) as Array<{ id: string; status: string }>
  t.same(listed.map((d) => d.status), ['deleted'])
  t.match(gp.stderr(), /"msg":"device deleted"/)
  t.match(gp.stderr(), new RegExp(`"detail":"device ${key.id} is deleted"`), 'the refusal says why')
  t.equal(await gp.stop(), 0)

  // Its frames stay in the ledger and verify: the whole ledger, a proof of each, each frame with the kept key.
  const v = await runCli(['ledger', 'verify', '--data', join(dir, 'ledger')])
  t.equal(v.code, 0, v.stderr)
  const gwKey = JSON.parse(readFileSync(join(dir, 'gateway.key'), 'utf8')).publicKey as string
  for (const f of sent) {
    const proofFile = join(dir, `proof-${leafHashHex(f)}.json`)
    const pr = await runCli(['ledger', 'proof', '--data', join(dir, 'ledger'), '--frame', leafHashHex(f), '--out', proofFile])
    t.equal(pr.code, 0, pr.stderr)
    const ck = await runCli(['ledger', 'check-proof', proofFile, '--key', gwKey])
    t.equal(ck.code, 0, ck.stderr)
    const file = join(dir, `frame-${leafHashHex(f)}.cose`)
    writeFileSync(file, f)
    const fv = await runCli(['frame', 'verify', file, '--key', shown.publicKey])
    t.equal(fv.code, 0, fv.stderr)
    t.match(fv.stdout, `valid: ES256 frame from ${key.id}`)
  }
  t.same((await runCli(['device', 'history', key.id, '--data', dir])).stdout.trim().split('\n').map((l) => JSON.parse(l).action), ['registered', 'revoked', 'reactivated', 'deleted'])
})

t.test('a registry file from before the lifecycle columns gains them in place, its devices kept', async (t) => {
  const dir = tempDir('mh-devlife-old-')
  const { default: Database } = await import('better-sqlite3')
  const key = newDeviceKey('se')
  const db = new Database(join(dir, 'registry.sqlite'))
  // The devices table as the first release created it.
  db.exec(`CREATE TABLE devices (id TEXT PRIMARY KEY, profile TEXT NOT NULL CHECK (profile IN ('se','bare')), public_key BLOB, secret BLOB,
    patient TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('active','revoked')), created_ms INTEGER NOT NULL, first_seen_ms INTEGER,
    last_seen_ms INTEGER, last_seq INTEGER, last_auth_counter INTEGER NOT NULL DEFAULT -1, revoked_ms INTEGER)`)
  db.prepare("INSERT INTO devices (id, profile, public_key, patient, status, created_ms) VALUES (?, 'se', ?, 'pt-old', 'active', 1)").run(key.id, Buffer.from((key as { publicKey: Uint8Array }).publicKey))
  db.close()
  const mv = await runCli(['device', 'move', '--device', key.id, '--patient', 'pt-new', '--data', dir])
  t.equal(mv.code, 0, mv.stderr)
  t.equal((await runCli(['device', 'delete', '--device', key.id, '--data', dir])).code, 0)
  t.match(JSON.parse((await runCli(['device', 'show', key.id, '--data', dir])).stdout), { id: key.id, patient: 'pt-new', status: 'deleted' })
})
