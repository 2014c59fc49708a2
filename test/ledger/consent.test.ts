import t from 'tap'
import { openLedger } from '../../ledger/ledger.ts'
import { verifyLedger } from '../../ledger/verify.ts'
import { checkProof } from '../../ledger/proof-check.ts'
import { signConsent, parseConsent, patientIdFromPublicKey, ConsentError, type ConsentChange } from '../../ledger/consent.ts'
import { ed25519Generate, sha256, ed25519Verify } from '../../ledger/crypto.ts'
import { encodeCbor, decodeCbor } from '../../ledger/cbor.ts'
import { tmp, producerKey, quiet } from './helpers.ts'

const patient = ed25519Generate()
const pid = patientIdFromPublicKey(patient.publicKey)
const base = (dir: string) => ({ dir, producerKey, producerId: 'gw-consent', blockIntervalMs: 60_000, ...quiet })

t.test('patient IDs and record parsing', async (t) => {
  t.match(pid, /^pt-[a-z2-7]{16}$/)
  t.equal(patientIdFromPublicKey(patient.publicKey), pid, 'deterministic')
  const rec = signConsent(patient, { action: 'grant', clinicianId: 'dr-ada', scope: 'ecg:read', expiresAt: 0, issuedAt: 1000 })
  const p = parseConsent(rec)
  t.equal(p.patientId, pid)
  t.equal(p.scope, 'ecg:read')
  // Tampered body, wrong signer, malformed CBOR, wrong types: all refused with ConsentError.
  const [body, sig] = decodeCbor(rec) as [Uint8Array, Uint8Array]
  const m = decodeCbor(body) as Map<number, unknown>
  m.set(2, 'dr-eve')
  t.throws(() => parseConsent(encodeCbor([encodeCbor(m as never), sig])), ConsentError, 'changed clinician breaks the signature')
  const other = ed25519Generate()
  const forged = signConsent(other, { action: 'grant', clinicianId: 'dr-ada', scope: '*', expiresAt: 0, issuedAt: 1 })
  t.not(parseConsent(forged).patientId, pid, 'another key is another patient')
  for (const bad of [new Uint8Array(0), new Uint8Array([0x82, 0x40]), encodeCbor([body]), encodeCbor([body, new Uint8Array(64)]), rec.subarray(0, rec.length - 1)]) t.throws(() => parseConsent(bad), ConsentError)
  t.throws(() => signConsent(patient, { action: 'maybe' as 'grant', clinicianId: 'x', scope: 'y', expiresAt: 0, issuedAt: 1 }), ConsentError)
  t.throws(() => signConsent(patient, { action: 'grant', clinicianId: '', scope: 'y', expiresAt: 0, issuedAt: 1 }), ConsentError)
})

t.test('grant, expiry, revoke with event, replay refused, state rebuilt on reopen, history provable', async (t) => {
  const dir = tmp()
  const l = await openLedger(base(dir))
  const changes: ConsentChange[] = []
  l.onConsent((c) => changes.push(c))
  t.notOk(l.consent.isAllowed(pid, 'dr-ada', 'ecg:read', 5000))
  const g = signConsent(patient, { action: 'grant', clinicianId: 'dr-ada', scope: 'ecg:read', expiresAt: 10_000, issuedAt: 1000 })
  const r1 = await l.appendConsent(g)
  t.ok(l.consent.isAllowed(pid, 'dr-ada', 'ecg:read', 5000))
  t.notOk(l.consent.isAllowed(pid, 'dr-ada', 'ecg:read', 10_000), 'expired at expiresAt')
  t.notOk(l.consent.isAllowed(pid, 'dr-ada', 'spo2:read', 5000), 'other scope')
  t.notOk(l.consent.isAllowed(pid, 'dr-bob', 'ecg:read', 5000), 'other clinician')
  await l.appendConsent(signConsent(patient, { action: 'grant', clinicianId: 'dr-bob', scope: '*', expiresAt: 0, issuedAt: 2000 }))
  t.ok(l.consent.isAllowed(pid, 'dr-bob', 'anything', 9e12), 'wildcard scope, no expiry')
  t.equal(l.consent.list(pid).length, 2)
  // Revoke: the listener runs synchronously, before appendConsent even resolves.
  let seenBeforeResolve = false
  const unsub = l.onConsent((c) => {
    if (c.action === 'revoke') seenBeforeResolve = !l.consent.isAllowed(pid, 'dr-bob', 'x', 0)
  })
  const rev = l.appendConsent(signConsent(patient, { action: 'revoke', clinicianId: 'dr-bob', scope: '*', expiresAt: 0, issuedAt: 3000 }))
  t.ok(seenBeforeResolve, 'revoke event fired and state already updated when the listener ran')
  await rev
  unsub()
  t.notOk(l.consent.isAllowed(pid, 'dr-bob', 'anything', 0))
  t.same(changes.map((c) => [c.action, c.clinicianId]), [['grant', 'dr-ada'], ['grant', 'dr-bob'], ['revoke', 'dr-bob']])
  // Replaying the old grant (same issuedAt) or an older record is refused.
  await t.rejects(l.appendConsent(signConsent(patient, { action: 'grant', clinicianId: 'dr-bob', scope: '*', expiresAt: 0, issuedAt: 2000 })), /replay refused/)
  await t.rejects(l.appendConsent(new Uint8Array([1, 2, 3])), ConsentError)
  // The grant is provable like a frame.
  const p = await l.proof(r1.leafHash)
  t.equal(p.leaf.kind, 'consent')
  const res = checkProof(p, producerKey.publicKey, { sha256, ed25519Verify })
  t.ok(res.bytesChecked)
  t.same(parseConsent(Buffer.from(p.leaf.bytes!, 'base64')).clinicianId, 'dr-ada')
  await l.close()
  const rep = await verifyLedger(dir)
  t.ok(rep.ok)
  t.equal(rep.consent, 3)
  const l2 = await openLedger(base(dir))
  t.ok(l2.consent.isAllowed(pid, 'dr-ada', 'ecg:read', 5000), 'state rebuilt from leaves')
  t.notOk(l2.consent.isAllowed(pid, 'dr-bob', 'x', 0))
  await t.rejects(l2.appendConsent(signConsent(patient, { action: 'grant', clinicianId: 'dr-bob', scope: '*', expiresAt: 0, issuedAt: 2500 })), /replay refused/, 'ordering survives restart')
  await l2.close()
})

t.test('a replica keeps imported consent across a restart (the consent rows reach its index)', async (t) => {
  const P = await openLedger(base(tmp()))
  await P.appendConsent(signConsent(patient, { action: 'grant', clinicianId: 'dr-replica', scope: '*', expiresAt: 0, issuedAt: 1000 }))
  await P.appendFrame(new Uint8Array([1, 2, 3]), { deviceId: 'd', seq: 1, t0: 1 })
  await P.cutBlock()
  const dir = tmp()
  const replica = { dir, producerPublicKey: producerKey.publicKey, producerId: 'gw-consent', ...quiet }
  let R = await openLedger(replica)
  await R.importBlock((await P.exportBlock(0))!)
  t.ok(R.consent.isAllowed(pid, 'dr-replica', 'ecg:read', 0), 'imported grant applies')
  await R.close() // checkpoints the index past the consent leaf
  R = await openLedger(replica)
  t.equal(R.size, 2)
  t.ok(R.consent.isAllowed(pid, 'dr-replica', 'ecg:read', 0), 'still granted after reopening from the index checkpoint')
  await R.close()
  await P.close()
})
