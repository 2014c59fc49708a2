/**
 * A board moved from one patient to another (device lifecycle, issue 13) on a real gateway
 * with its ledger and dashboard: the frames it sent before the move stay the first
 * patient's (their history and their consent), the frames after it are the second's. The
 * ledger records the device only, so the registry's move history decides whose a frame is.
 */
import t from 'tap'
import { ADMIN, CLINICIAN, Board, Client, startDashEnv } from './helpers.ts'

t.test('frames before a move stay the old patient\'s; after it, the new one\'s', async (t) => {
  const env = await startDashEnv(2)
  t.teardown(() => env.close())
  const [pa, pb] = env.patients
  const admin = new Client(env.base)
  await admin.login(ADMIN)
  const alice = new Client(env.base)
  await alice.login(CLINICIAN)
  // alice may see patient A only
  const g = await admin.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: CLINICIAN.username })
  t.equal(g.status, 200, `alice: consent from patient A`)
  // bob may see patient B only
  env.gw.registry.addUser('bob', 'clinician', 'bob-ward-7x')
  t.equal((await admin.req('POST', `/api/dash/patients/${pb.id}/consent`, { action: 'grant', clinicianId: 'bob' })).status, 200, 'bob: consent from patient B')
  const bob = new Client(env.base)
  await bob.login({ username: 'bob', password: 'bob-ward-7x' })

  // Board times: frames 0-3 before the move, 4-7 after (the move is at gateway time between).
  const t0 = Date.now() - 60_000
  const board = new Board(pa.device, env.mqttUrl, t0)
  await board.connect()
  t.teardown(() => board.close())
  await board.send(4)
  const moveAt = t0 + 4 * 1000 - 500
  env.gw.registry.move(pa.device.id, pb.id, moveAt)
  await board.send(4)

  const seqs = async (c: Client, patientId: string) => {
    const r = await c.req('GET', `/api/dash/patients/${patientId}/frames?limit=50`)
    return { status: r.status, seqs: r.status === 200 ? r.json<{ seq: number }[]>().map((x) => x.seq).sort((a, b) => a - b) : [] }
  }
  t.same((await seqs(alice, pa.id)).seqs, [0, 1, 2, 3], "patient A keeps the frames from before the move: A's clinician still sees them")
  t.same((await seqs(bob, pb.id)).seqs, [4, 5, 6, 7], "patient B has only the frames from after it: B's clinician sees no frame of A's")
  t.equal((await seqs(alice, pb.id)).status, 403, "A's clinician has no consent from B")

  // Proofs follow the same rule: A's clinician may prove A's old frame, not B's new one.
  const rows = await bob.req('GET', `/api/dash/patients/${pb.id}/frames?limit=50`).then((r) => r.json<{ leafHash: string; seq: number }[]>())
  const oldRows = await alice.req('GET', `/api/dash/patients/${pa.id}/frames?limit=50`).then((r) => r.json<{ leafHash: string; seq: number }[]>())
  t.equal((await alice.req('GET', `/api/dash/proof/${oldRows[0].leafHash}`)).status, 200, "a proof of A's frame from before the move")
  t.equal((await alice.req('GET', `/api/dash/proof/${rows[0].leafHash}`)).status, 403, "no proof of B's frame for A's clinician")
  t.equal((await bob.req('GET', `/api/dash/proof/${oldRows[0].leafHash}`)).status, 403, "no proof of A's old frame for B's clinician")

  // The FHIR export of A covers only A's time with the board.
  const ex = await alice.req('GET', `/api/dash/patients/${pa.id}/fhir?from=${t0 - 1000}&to=${Date.now() + 1000}`)
  t.equal(ex.status, 200)
  const bundle = ex.json<{ entry: Array<{ resource: { resourceType: string; identifier?: Array<{ value: string }> } }> }>()
  const frameIds = new Set(bundle.entry.flatMap((e) => (e.resource.resourceType === 'Observation' ? (e.resource.identifier ?? []).map((i) => i.value.split('#')[0]) : [])))
  const newHashes = new Set(rows.map((r) => r.leafHash))
  t.ok(frameIds.size > 0 && [...frameIds].every((h) => !newHashes.has(h)), `A's export has ${frameIds.size} frames, none sent after the move`)
})
