/**
 * Consent across a cluster: gateways with the real ledger (consent records live in
 * it) sharing a real redis-server started here. A grant posted to one gateway lets a
 * clinician subscribe on another, a revocation posted to one ends a live
 * subscription held on another, a gateway (re)started later knows every record
 * posted while it was down, and a record tampered with in Redis is refused.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway, type Gateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import { recordId } from '../../gateway/cluster-consent.ts'
import { signConsent, patientIdFromPublicKey } from '../../ledger/consent.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim, subscribe } from './helpers/devices.ts'
import { redisSkip, startRedis } from '../../testing/redis.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'

/** Real time allowed for a change made through one gateway to reach another through Redis. */
const REDIS_MS = 15_000

t.test('consent is shared by every gateway of a cluster', { skip: redisSkip() }, async (t) => {
  const redis = await startRedis()
  const tmp = mkdtempSync(join(tmpdir(), 'mh-cluster-consent-'))
  const running = new Set<Gateway>()
  const clients: MqttClient[] = []
  const probe = new Redis(redis.url)
  t.teardown(async () => {
    await Promise.all(clients.map(endClient))
    await Promise.all([...running].map((g) => g.close()))
    probe.disconnect()
    await redis.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  async function start(name: string) {
    const dataDir = join(tmp, name)
    mkdirSync(dataDir, { recursive: true })
    const log = memoryLogger()
    const cfg = resolveConfig({ dataDir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto', redisUrl: redis.url, registryFile: join(tmp, 'registry.sqlite') })
    const gw = await startGateway(cfg, { log })
    running.add(gw)
    return {
      gw,
      logs: log.entries,
      mqtt: `mqtt://127.0.0.1:${gw.ports.mqtt}`,
      post: (record: Uint8Array) =>
        fetch(`http://127.0.0.1:${gw.ports.http}/api/consent`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: new Blob([Buffer.from(record)]) }),
      async stop() {
        await gw.close()
        running.delete(gw)
      },
    }
  }
  const login = async (url: string, user: string) => {
    const c = await connect(url, { clientId: `u:${user}`, username: user, password: Buffer.from(PASSWORD) })
    clients.push(c)
    return c
  }

  const A = await start('a')
  let B = await start('b')
  const pk = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
  const patient = { privateKey: pk.privateKey, publicKey: pk.publicKey, id: patientIdFromPublicKey(pk.publicKey) }
  const se = newDeviceKey('se')
  registerSim(A.gw.registry, se, patient.id) // one registry file: B knows the patient too
  for (const u of ['dr.a', 'dr.b', 'dr.c', 'dr.late', 'dr.evil']) A.gw.registry.addUser(u, 'clinician', PASSWORD)
  let issuedAt = Date.now()
  const record = (action: 'grant' | 'revoke', clinicianId: string) => signConsent(patient, { action, clinicianId, scope: 'live', expiresAt: 0, issuedAt: issuedAt++ })
  const allowed = (g: Gateway, clinician: string) => g.consent.isAllowed(patient.id, clinician, 'live', Date.now())
  const topic = `mhealth/patient/${patient.id}/frames`

  await t.test('a grant posted to A lets the clinician subscribe on B', async (t) => {
    const doc = await login(B.mqtt, 'dr.b')
    t.equal(await subscribe(doc, topic), 128, 'no consent yet')
    const grant = record('grant', 'dr.b')
    const res = await A.post(grant)
    t.equal(res.status, 201)
    t.ok(allowed(A.gw, 'dr.b'), 'A applied it before answering')
    const appliedOnB = () => B.logs.some((e) => e.msg === 'consent record applied from cluster' && e.patientId === patient.id)
    await waitFor(() => allowed(B.gw, 'dr.b'), 'B to apply the grant', REDIS_MS)
    t.equal(await subscribe(doc, topic), 0, 'B grants the subscription')
    // The ledger holds the record (and answers for it) a moment before B logs the append.
    await waitFor(appliedOnB, 'B to log the grant appended to its own ledger', REDIS_MS)
    t.equal((await B.post(grant)).status, 409, 'the same record posted again to B is a replay')
  })

  await t.test('a record older than one admitted through another gateway is refused cluster-wide', async (t) => {
    const stale = signConsent(patient, { action: 'grant', clinicianId: 'dr.c', scope: 'live', expiresAt: 0, issuedAt: issuedAt - 10 })
    const res = await B.post(stale)
    t.equal(res.status, 409)
    t.match(((await res.json()) as { error: string }).error, /not after the previous record in the cluster/)
    t.notOk(allowed(A.gw, 'dr.c'))
    t.notOk(allowed(B.gw, 'dr.c'))
  })

  await t.test('a revocation posted to B ends a live subscription on A', async (t) => {
    t.equal((await B.post(record('grant', 'dr.a'))).status, 201)
    t.equal((await B.post(record('grant', 'dr.c'))).status, 201)
    await waitFor(() => allowed(A.gw, 'dr.a') && allowed(A.gw, 'dr.c'), 'A to apply both grants', REDIS_MS)
    const docA = await login(A.mqtt, 'dr.a')
    const docC = await login(A.mqtt, 'dr.c') // keeps its consent: shows the frames are still flowing
    t.equal(await subscribe(docA, topic), 0)
    t.equal(await subscribe(docC, topic), 0)
    const gotA: number[] = []
    const gotC: number[] = []
    docA.on('message', (tp, p) => tp === topic && gotA.push(p.length))
    docC.on('message', (tp, p) => tp === topic && gotC.push(p.length))
    const dev = await connectDevice(A.mqtt, se)
    clients.push(dev)
    await publishAcked(dev, `mhealth/dev/${se.id}/frames`, frame(se, 1))
    await waitFor(() => gotA.length === 1 && gotC.length === 1, 'both clinicians to get frame 1', REDIS_MS)

    t.equal((await B.post(record('revoke', 'dr.a'))).status, 201)
    t.notOk(allowed(B.gw, 'dr.a'), 'B applied it before answering')
    await waitFor(() => !allowed(A.gw, 'dr.a'), 'A to apply the revocation', REDIS_MS)
    await publishAcked(dev, `mhealth/dev/${se.id}/frames`, frame(se, 2))
    await waitFor(() => gotC.length === 2, 'dr.c to get frame 2', REDIS_MS)
    await expectQuiet(200, 'frame 2 at dr.a, whose consent was revoked (dr.c already has it)')
    t.equal(gotA.length, 1, 'dr.a gets nothing after the revocation')
    t.equal(await subscribe(docA, topic), 128, 'and may not subscribe again on A')
  })

  await t.test('a gateway restarted after records were posted knows them all', async (t) => {
    await B.stop()
    t.equal((await A.post(record('grant', 'dr.late'))).status, 201)
    t.equal((await A.post(record('revoke', 'dr.c'))).status, 201)
    B = await start('b') // same data dir: its ledger holds the earlier records already
    t.ok(allowed(B.gw, 'dr.late'), 'the grant posted while it was down')
    t.notOk(allowed(B.gw, 'dr.c'), 'the revocation posted while it was down')
    t.notOk(allowed(B.gw, 'dr.a'))
    t.ok(allowed(B.gw, 'dr.b'))
    t.notOk(B.logs.some((e) => e.msg === 'consent record from redis not appended'), 'records it held are not appended twice')
    t.equal(B.logs.filter((e) => e.msg === 'consent record applied from cluster').length, 2, 'exactly the two it lacked')
    const C = await start('c') // a new gateway: every record from Redis
    t.ok(allowed(C.gw, 'dr.late') && allowed(C.gw, 'dr.b'))
    t.notOk(allowed(C.gw, 'dr.a') || allowed(C.gw, 'dr.c'))
    await C.stop()
  })

  await t.test('a record tampered with in Redis is refused and logged', async (t) => {
    const genuine = Buffer.from(record('grant', 'dr.evil'))
    const at = genuine.indexOf('dr.evil')
    const forged = Buffer.from(genuine)
    forged.write('dr.eviL', at) // no longer what the patient signed
    const id = recordId(forged) // a consistent ID: only the signature gives it away
    await probe.hset('mhealth:consent:rec', id, forged.toString('base64'))
    await probe.zadd(`mhealth:consent:pt:${patient.id}`, issuedAt, id)
    await probe.publish('mhealth:consent:changed', patient.id)
    for (const g of [A, B]) await waitFor(() => g.logs.some((e) => e.msg === 'consent record from redis refused' && e.id === id), 'the refusal to be logged', REDIS_MS)
    t.match(A.logs.find((e) => e.msg === 'consent record from redis refused' && e.id === id), { patientId: patient.id, reason: /bad signature/ })
    t.notOk(allowed(A.gw, 'dr.eviL') || allowed(B.gw, 'dr.eviL'), 'not applied')
    const D = await start('d')
    t.ok(D.logs.some((e) => e.msg === 'consent record from redis refused' && e.id === id), 'refused at start-up too')
    t.notOk(allowed(D.gw, 'dr.eviL'))
    t.ok(allowed(D.gw, 'dr.late'), 'the genuine records still load')
    await D.stop()
    t.equal((await B.post(record('grant', 'dr.evil'))).status, 201, 'later genuine records still go through')
  })
})
