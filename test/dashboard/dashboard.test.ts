/**
 * The dashboard on a real gateway (real ledger, real MQTT boards, real HTTP):
 * login and the session wall, consent-gated patients and live stream, vitals
 * computed on the gateway from raw samples, trends, frames and their proofs
 * (checked here with the same checker and @noble libraries the browser uses),
 * FHIR export, device admin with rejected-frame counts, and consent revocation
 * ending the live stream at once.
 */
import t from 'tap'
import { sha256 } from '@noble/hashes/sha2.js'
import { ed25519 } from '@noble/curves/ed25519.js'
import { checkProof } from '../../ledger/proof-check.ts'
import { signFrame } from '../../protocol/node/sign.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import { newDeviceKey, publishAcked } from '../gateway/helpers/devices.ts'
import { ADMIN, Board, CLINICIAN, Client, openSse, startDashEnv } from './helpers.ts'
import { expectQuiet, waitFor } from '../helpers/wait.ts'

const env = await startDashEnv(2)
t.teardown(() => env.close())
const [pa, pb] = env.patients
const t0 = Date.now() - 60_000

t.test('nothing patient-related without a session', async (t) => {
  const anon = new Client(env.base)
  const shell = await anon.req('GET', '/')
  t.equal(shell.status, 200, 'the app shell is public')
  t.notMatch(shell.body, pa.id, 'and holds no patient data')
  t.match(shell.headers['content-security-policy'], /script-src 'self'/)
  const js = await anon.req('GET', '/app.js')
  t.equal(js.status, 200)
  t.notMatch(js.body, /node:/, 'the bundle has no Node imports')
  for (const path of ['/api/dash/patients', '/api/dash/live', `/api/dash/patients/${pa.id}/trends`, `/api/dash/patients/${pa.id}/fhir`, '/api/dash/devices', `/api/dash/proof/${'0'.repeat(64)}`, '/api/dash/me']) {
    const r = await anon.req('GET', path)
    t.equal(r.status, 401, `${path} needs a login`)
  }
  const bad = await anon.req('POST', '/api/dash/login', { username: CLINICIAN.username, password: 'wrong' })
  t.equal(bad.status, 401)
  t.equal(anon.cookie, '', 'no cookie for a failed login')
  const malformed = await anon.req('POST', '/api/dash/login', { username: 5 })
  t.equal(malformed.status, 400)
  t.match(malformed.json<{ error: string }>().error, /username: expected a string/)
  t.equal((await anon.req('GET', '/healthz')).status, 200, "the gateway's own routes still answer")
})

t.test('consent gates the ward; live frames carry gateway-computed vitals; revoke ends the stream', async (t) => {
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  t.match(alice.cookie, /^mh_session=/)
  t.same(await alice.req('GET', '/api/dash/patients').then((r) => r.json()), [], 'no consent: no patients, not even their IDs')
  t.equal((await alice.req('GET', `/api/dash/patients/${pa.id}/trends`)).status, 403)
  t.equal((await alice.req('GET', '/api/dash/devices')).status, 403, 'device admin needs the admin role')
  t.equal((await alice.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: 'alice' })).status, 403, 'a clinician cannot grant herself consent')

  const root = new Client(env.base)
  await root.login(ADMIN)
  const g = await root.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: 'alice', scope: 'live' })
  t.equal(g.status, 200, g.body)
  t.match(g.json(), { patientId: pa.id, grants: [{ clinicianId: 'alice', scope: 'live', expiresMs: null }] })
  const list = await alice.req('GET', '/api/dash/patients').then((r) => r.json<{ patientId: string; consented: boolean }[]>())
  t.match(list, [{ patientId: pa.id, consented: true, name: 'Patient A', location: 'Bed 1' }])

  // Frames stored before the stream opens: a new subscriber gets the last few replayed.
  const board = new Board(pa.device, env.mqttUrl, t0)
  await board.connect()
  await board.send(3)
  const sse = await openSse(alice)
  t.equal(sse.status, 200)
  await sse.next((e) => e.event === 'ready')
  t.ok(sse.events.some((e) => e.event === 'subscribed' && e.data.patientId === pa.id))

  await sse.next((e) => e.event === 'frame' && e.data.seq === 2)
  t.same(sse.events.filter((e) => e.event === 'frame').map((e) => e.data.seq), [0, 1, 2], 'recent frames replayed, in order')
  await board.send(9)
  const f = await sse.next((e) => e.event === 'frame' && (e.data.vitals as { hr?: unknown }).hr !== undefined)
  t.equal(f.data.patientId, pa.id)
  t.equal((f.data.ecg as number[]).length, 250, 'raw ECG samples for the waveform')
  t.equal((f.data.ir as number[]).length, 100, 'raw IR samples for the pleth')
  const hr = (f.data.vitals as { hr: { value: number; quality: number; source: string } }).hr
  t.equal(hr.source, 'gateway', 'the frame had no hr: computed on the gateway with signal/')
  t.ok(Math.abs(hr.value - 72) < 3, `HR ${hr.value} is the synthetic 72 /min`)
  t.match(f.data.leafHash, /^[0-9a-f]{64}$/)

  // Trends and frames.
  const tr = await alice.req('GET', `/api/dash/patients/${pa.id}/trends?from=${t0 - 1000}&to=${Date.now()}`).then((r) => r.json<{ hr: { t: number; value: number }[] }>())
  t.ok(tr.hr.length > 0, 'HR trend points')
  const rows = await alice.req('GET', `/api/dash/patients/${pa.id}/frames?limit=5`).then((r) => r.json<{ leafHash: string; seq: number; state: string }[]>())
  t.equal(rows.length, 5)
  t.equal(rows[0].seq, 11, 'most recent first')
  t.equal((await alice.req('GET', `/api/dash/patients/${pa.id}/frames?limit=0`)).status, 400)

  // The proof, checked as the browser does.
  const key = await alice.req('GET', '/api/dash/producer-key').then((r) => r.json<{ publicKey: string }>().publicKey)
  const bundle = await alice.req('GET', `/api/dash/proof/${rows[2].leafHash}`).then((r) => r.json<{ leaf: { bytes?: string } }>())
  const deps = { sha256: (d: Uint8Array) => sha256(d), ed25519Verify: (pk: Uint8Array, m: Uint8Array, s: Uint8Array) => ed25519.verify(s, m, pk) }
  const res = checkProof(bundle, Buffer.from(key, 'hex'), deps)
  t.equal(res.bytesChecked, true, 'the proof carries the frame bytes and they hash to the leaf')
  t.throws(() => checkProof(bundle, new Uint8Array(32).fill(1), deps), /producer signature does not verify/, 'a different producer key fails')
  const after = await alice.req('GET', `/api/dash/patients/${pa.id}/frames?limit=5`).then((r) => r.json<{ state: string; block?: number }[]>())
  t.equal(after[2].state, 'sealed', 'fetching a proof sealed the frame in a block')
  t.equal((await alice.req('GET', `/api/dash/proof/${'ab'.repeat(32)}`)).status, 404)
  t.equal((await alice.req('GET', '/api/dash/proof/xyz')).status, 400)
  t.equal((await alice.req('GET', '/api/dash/patients/%E0%A4%A/trends')).status, 400, 'bad percent-encoding is a 400, not a crash')
  t.equal((await alice.req('GET', '/api/dash/patients/a%2Fb/trends')).status, 400, 'patient IDs are checked')
  const del = await fetch(env.base + '/api/dash/patients', { method: 'DELETE', headers: { cookie: alice.cookie, 'content-type': 'application/json' } })
  t.equal(del.status, 405, 'a method the path does not have (sent as the page would: JSON-typed)')
  t.equal((await alice.req('GET', '/api/dash/nothing')).status, 404)
  const notJson = await alice.req('POST', '/api/dash/login')
  t.equal(notJson.status, 415, 'login without a JSON body')

  // Another patient's frames: no consent, no proof.
  const other = new Board(pb.device, env.mqttUrl, t0)
  await other.connect()
  await other.send(2)
  const pbRows = await root.req('GET', `/api/dash/devices`).then((r) => r.json<{ deviceId: string; acceptedFrames: number }[]>())
  t.equal(pbRows.find((d) => d.deviceId === pb.device.id)?.acceptedFrames, 2)
  t.notOk(sse.events.some((e) => e.event === 'frame' && e.data.patientId === pb.id), 'frames of a patient without consent never reach the stream')

  // Revocation ends the stream at once.
  const before = sse.events.length
  const rv = await root.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'revoke', clinicianId: 'alice', scope: 'live' })
  t.equal(rv.status, 200)
  const end = await sse.next((e) => e.event === 'end')
  t.same(end.data, { patientId: pa.id, reason: 'consent-revoked' })
  await board.send(2)
  await expectQuiet(200, 'a frame on the stream after the revocation')
  t.notOk(sse.events.slice(before).some((e) => e.event === 'frame'), 'no frame after the revocation')
  t.equal((await alice.req('GET', `/api/dash/patients/${pa.id}/trends`)).status, 403)
  t.same(await alice.req('GET', '/api/dash/patients').then((r) => r.json()), [])

  // A new grant while the stream is open subscribes the patient without a reconnect.
  await root.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: 'alice', scope: 'live' })
  await sse.next((e) => e.event === 'subscribed' && sse.events.indexOf(e) > before)
  await board.send(1)
  await sse.next((e) => e.event === 'frame' && e.data.seq === board.seq - 1)
  sse.close()
  await board.close()
  await other.close()
})

t.test('devices: list with rejected counts by reason, register, revoke', async (t) => {
  const root = new Client(env.base)
  await root.login(ADMIN)
  const board = new Board(pb.device, env.mqttUrl, t0 + 10_000)
  await board.connect()
  // A frame signed by another key: refused with a 'signature' NACK, never stored.
  const forged = signFrame({ ...newDeviceKey('se'), id: pb.device.id }, { ...syntheticPayload(pb.device.id, { seconds: 1, seq: 500, seed: 1, t0: Date.now() - 1000 }) })
  await publishAcked(board.client!, `mhealth/dev/${pb.device.id}/frames`, Buffer.from(forged))
  await publishAcked(board.client!, `mhealth/dev/${pb.device.id}/frames`, Buffer.from([0xa1, 0x01]))
  let dev!: { deviceId: string; rejected: Record<string, number>; online: boolean; lastSeenMs: number | null; status: string }
  const rejections = () => Object.values(dev.rejected).reduce((a, b) => a + b, 0)
  await waitFor(async () => {
    const list = await root.req('GET', '/api/dash/devices').then((r) => r.json<(typeof dev)[]>())
    dev = list.find((d) => d.deviceId === pb.device.id)!
    return rejections() >= 2
  }, () => `both rejections in the device list (${JSON.stringify(dev?.rejected)})`)
  t.equal(rejections(), 2, `two rejections counted: ${JSON.stringify(dev.rejected)}`)
  t.equal(dev.rejected.signature, 1)
  t.equal(dev.online, true)

  const fresh = newDeviceKey('se')
  const pub = Buffer.from((fresh as { publicKey: Uint8Array }).publicKey).toString('hex')
  const reg = await root.req('POST', '/api/dash/devices', { profile: 'se', patientId: pb.id, publicKey: pub })
  t.equal(reg.status, 201, reg.body)
  t.equal(reg.json<{ deviceId: string }>().deviceId, fresh.id, 'the ID is derived from the key')
  t.equal((await root.req('POST', '/api/dash/devices', { profile: 'se', patientId: pb.id, publicKey: pub })).status, 409, 'registered twice')
  const badKey = await root.req('POST', '/api/dash/devices', { profile: 'se', patientId: pb.id, publicKey: '04' + '00'.repeat(10) })
  t.equal(badKey.status, 400)
  t.match(badKey.json<{ error: string }>().error, /publicKey: expected 65 bytes/)

  const rv = await root.req('POST', `/api/dash/devices/${pb.device.id}/revoke`, {})
  t.equal(rv.status, 200)
  await new Promise<void>((r) => (board.client!.connected ? board.client!.once('close', () => r()) : r()))
  const list = await root.req('GET', '/api/dash/devices').then((r) => r.json<{ deviceId: string; status: string; online: boolean }[]>())
  t.match(list.find((d) => d.deviceId === pb.device.id), { status: 'revoked', online: false }, 'revoked and disconnected')
  await board.close()
})

t.test('FHIR export of stored frames', async (t) => {
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  const r = await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=${t0 - 1000}&to=${Date.now()}`)
  t.equal(r.status, 200, 'export answers')
  t.match(r.headers['content-type'], /application\/fhir\+json/)
  const b = r.json<{ resourceType: string; type: string; entry: { resource: Record<string, unknown> }[] }>()
  t.equal(b.resourceType, 'Bundle')
  t.equal(b.type, 'collection')
  const ecg = b.entry.filter((e) => (e.resource.valueSampledData as unknown) !== undefined)
  // Patient A's board sent 3 + 9 frames while consented, 2 after the revocation, 1 after the new grant: all stored.
  t.equal(ecg.length, 15, 'one ECG Observation per stored frame')
  const hr = b.entry.filter((e) => JSON.stringify(e.resource.code ?? {}).includes('"8867-4"') && !JSON.stringify(e.resource.code).includes('8889-8'))
  t.ok(hr.length > 0, 'heart rate Observations from gateway-computed values (the frames carried none)')
  t.match(hr[0].resource.valueQuantity, { unit: 'beats/minute', code: '/min' })
  t.equal((await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=10&to=5`)).status, 400)
  t.equal((await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=0&to=${Date.now()}`)).status, 400, 'over the export range limit')
  t.equal((await alice.req('GET', `/api/dash/patients/${pb.id}/fhir`)).status, 403, 'no consent, no export')
})

t.test('logout ends the session', async (t) => {
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  const cookie = alice.cookie
  t.equal((await alice.req('POST', '/api/dash/logout', {})).status, 200)
  alice.cookie = cookie
  t.equal((await alice.req('GET', '/api/dash/me')).status, 401, 'the old cookie no longer works')
})

t.test("one session store: the dashboard's cookie and the API's bearer token live side by side and never open each other's door", async (t) => {
  const before = env.gw.sessions.size
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  const cookieToken = alice.cookie.split('=')[1]
  const api = await fetch(`${env.base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CLINICIAN) })
  t.equal(api.status, 200)
  const apiToken = (await api.json()).token as string
  t.equal(env.gw.sessions.size, before + 2, "both logins are in the gateway's one store")
  const access = (token: string) => fetch(`${env.base}/api/access?patient=${pa.id}`, { headers: { authorization: `Bearer ${token}` } })
  t.equal((await access(apiToken)).status, 200, 'the API token works as a bearer token')
  t.equal((await access(cookieToken)).status, 401, 'the dashboard cookie does not')
  const asCookie = new Client(env.base)
  asCookie.cookie = `mh_session=${apiToken}`
  t.equal((await asCookie.req('GET', '/api/dash/me')).status, 401, 'the API token does not work as a dashboard cookie')
  t.equal((await alice.req('GET', '/api/dash/me')).status, 200, 'the cookie works on the dashboard')
  // Earlier tests' logins of the same user may still be live: at least these two end.
  const ended = env.gw.sessions.destroyWhere((d) => (d as { username?: string }).username === CLINICIAN.username || (d as { userId?: string }).userId === CLINICIAN.username)
  t.ok(ended >= 2, `revoking a user ends every kind of their sessions (${ended})`)
  t.equal((await access(apiToken)).status, 401)
  t.equal((await alice.req('GET', '/api/dash/me')).status, 401)
})
