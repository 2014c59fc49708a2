/**
 * The gateway with the real ledger as its FrameStore and ConsentPort: signed frames
 * from real MQTT clients end up in the ledger, duplicates are stored once (also
 * across a restart), consent records drive clinician subscriptions, and a SIGKILLed
 * gateway process loses no frame it acknowledged.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import type { LedgerFrameStore } from '../../gateway/ledger-store.ts'
import { openLedgerReadOnly } from '../../ledger/ledger.ts'
import { signConsent, patientIdFromPublicKey } from '../../ledger/consent.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { runCli } from '../helpers/cli.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim, subscribe, type SimKey } from './helpers/devices.ts'
import { spawnGateway } from './helpers/process.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`

function patientKey() {
  const k = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
  return { privateKey: k.privateKey, publicKey: k.publicKey, id: patientIdFromPublicKey(k.publicKey) }
}

async function storedSeqs(dataDir: string, deviceId: string): Promise<number[]> {
  const l = await openLedgerReadOnly(join(dataDir, 'ledger'))
  try {
    return (await l.frames({ deviceId, limit: 100_000 })).map((f) => f.seq).sort((a, b) => a - b)
  } finally {
    await l.close()
  }
}

t.test('in process: the default store is the ledger', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = memoryLogger()
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log })
  let closed = false
  t.teardown(() => (closed ? undefined : gw.close()))
  const url = `mqtt://127.0.0.1:${gw.ports.mqtt}`
  const http = `http://127.0.0.1:${gw.ports.http}`
  const store = gw.store as LedgerFrameStore
  t.ok(store.ledger, 'a ledger-backed store')

  const patient = patientKey()
  const se = newDeviceKey('se')
  const bare = newDeviceKey('bare')
  registerSim(gw.registry, se, patient.id)
  registerSim(gw.registry, bare, 'ward-3-bed-2')
  const dev = await connectDevice(url, se)
  const devBare = await connectDevice(url, bare)
  t.teardown(() => Promise.all([endClient(dev), endClient(devBare)]))

  await t.test('frames are in the ledger once acknowledged; duplicates stored once', async (t) => {
    const sent = [1, 2, 3, 4, 5].map((s) => frame(se, s))
    await Promise.all(sent.map((f) => publishAcked(dev, framesTopic(se.id), f)))
    await publishAcked(dev, framesTopic(se.id), frame(se, 3)) // a retransmission (ES256 re-signed: other bytes, same seq)
    await publishAcked(devBare, framesTopic(bare.id), frame(bare, 1))
    const fs = await store.ledger.frames({ deviceId: se.id })
    t.same(fs.map((f) => f.seq).sort(), [1, 2, 3, 4, 5])
    t.same(Buffer.from(fs.find((f) => f.seq === 2)!.bytes!), sent[1], 'the exact bytes received')
    t.equal((await store.ledger.frames({ deviceId: bare.id })).length, 1)
    t.equal(gw.metrics.framesDuplicate.get(), 1)
  })

  await t.test('consent records from the ledger decide clinician subscriptions, live', async (t) => {
    gw.registry.addUser('dr.house', 'clinician', 'vicodin-and-lupus')
    const doc = await connect(url, { clientId: 'u:dr.house', username: 'dr.house', password: Buffer.from('vicodin-and-lupus') })
    t.teardown(() => endClient(doc))
    const topic = `mhealth/patient/${patient.id}/frames`
    t.equal(await subscribe(doc, topic), 128, 'no consent yet')

    const post = (body: Uint8Array) => fetch(`${http}/api/consent`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: new Blob([Buffer.from(body)]) })
    const t0 = Date.now()
    const grant = signConsent(patient, { action: 'grant', clinicianId: 'dr.house', scope: 'live', expiresAt: 0, issuedAt: t0 })
    const res = await post(grant)
    t.equal(res.status, 201)
    t.match(await res.json(), { patientId: patient.id, action: 'grant' })
    t.equal(await subscribe(doc, topic), 0, 'granted')

    const got: number[] = []
    doc.on('message', (tp, payload) => {
      if (tp === topic) got.push(payload.length)
    })
    const f10 = frame(se, 10)
    await publishAcked(dev, framesTopic(se.id), f10)
    await waitFor(() => got.length > 0, 'the live frame at the clinician')
    t.same(got, [f10.length], 'live frame delivered')

    const revoke = signConsent(patient, { action: 'revoke', clinicianId: 'dr.house', scope: 'live', expiresAt: 0, issuedAt: t0 + 1 })
    t.equal((await post(revoke)).status, 201)
    await publishAcked(dev, framesTopic(se.id), frame(se, 11))
    await expectQuiet(200, 'frame 11 at the clinician whose consent was revoked')
    t.same(got, [f10.length], 'nothing after the revocation, on the same live subscription')
    t.equal(await subscribe(doc, topic), 128, 'a new subscription is refused')

    t.equal((await post(grant)).status, 409, 'a replayed old grant is refused by the ledger')
    t.equal((await post(new Uint8Array([1, 2, 3]))).status, 400, 'junk refused')
    const stranger = patientKey()
    t.equal((await post(signConsent(stranger, { action: 'grant', clinicianId: 'dr.house', scope: 'live', expiresAt: 0, issuedAt: t0 }))).status, 403, 'unknown patient refused')
    const json = await fetch(`${http}/api/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ record: Buffer.from(signConsent(patient, { action: 'grant', clinicianId: 'dr.house', scope: '*', expiresAt: 0, issuedAt: t0 + 2 })).toString('base64') }),
    })
    t.equal(json.status, 201, 'JSON body with base64 record')
    t.equal(await subscribe(doc, topic), 0, 'the "*" grant covers live')
  })

  await t.test('after shutdown the ledger verifies', async (t) => {
    await Promise.all([endClient(dev), endClient(devBare)])
    await gw.close()
    closed = true
    const r = await runCli(['ledger', 'verify', '--data', dir])
    t.equal(r.code, 0, r.stderr)
    // 8 frames (se 1-5, 10, 11; bare 1) and the 3 accepted consent records (grant, revoke, '*' grant)
    t.match(r.stdout, /ok: \d+ blocks, 11 leaves \(8 frames, 0 pruned, 3 consent\)/)
  })
})

t.test('a real gateway process: kill -9 after PUBACKs loses nothing; duplicates across restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwp-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let gp = await spawnGateway(dir)
  t.teardown(() => gp.kill9())
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim()
  const keys: SimKey[] = [newDeviceKey('se'), newDeviceKey('bare')]
  for (const k of keys) {
    const body = k.type === 'p256'
      ? { profile: 'se', publicKey: Buffer.from(k.publicKey).toString('hex'), patient: 'p-1' }
      : { profile: 'bare', id: k.id, secret: Buffer.from(k.secret).toString('hex'), patient: 'p-2' }
    const res = await fetch(`http://127.0.0.1:${gp.ready.ports.http}/api/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    t.equal(res.status, 201, `registered ${k.type}`)
  }
  const N = 40
  const sendAll = async (port: number, seqs: number[]) => {
    const clients = await Promise.all(keys.map((k) => connectDevice(`mqtt://127.0.0.1:${port}`, k)))
    await Promise.all(keys.map((k, i) => Promise.all(seqs.map((s) => publishAcked(clients[i]!, framesTopic(k.id), frame(k, s))))))
    return clients
  }
  const seqs = Array.from({ length: N }, (_, i) => i + 1)
  const clients = await sendAll(gp.ready.ports.mqtt!, seqs)
  // Every PUBACK is in: pull the plug.
  await gp.kill9()
  for (const c of clients) c.end(true)

  let v = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(v.code, 0, `verify after kill -9: ${v.stdout}${v.stderr}`)
  for (const k of keys) t.same(await storedSeqs(dir, k.id), seqs, `every acknowledged ${k.type} frame survived kill -9`)

  gp = await spawnGateway(dir)
  const more = Array.from({ length: N + 10 }, (_, i) => i + 1)
  const again = await sendAll(gp.ready.ports.mqtt!, more) // 1..N are retransmissions
  await Promise.all(again.map((c) => endClient(c)))
  t.equal(await gp.stop(), 0, 'graceful shutdown exits 0')
  v = await runCli(['ledger', 'verify', '--data', dir])
  t.equal(v.code, 0, `verify after restart: ${v.stdout}${v.stderr}`)
  for (const k of keys) t.same(await storedSeqs(dir, k.id), more, `${k.type}: retransmissions after restart acknowledged, stored once`)
})
