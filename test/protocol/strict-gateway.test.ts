/**
 * Issue 19 end to end: a frame its own device signed correctly but that the
 * protocol forbids (seq under the integer key 2 and again under the half-float
 * key 2.0; seq as a half-float; seq of 2^48), published by a real MQTT client to
 * a real gateway storing in the real ledger, is NACKed with the check that
 * refused it and nothing is stored; a good frame right after it is stored.
 * Before the fix the first two were stored (the first under the seq of its
 * second key) and the third was NACKed `internal` when the ledger refused it.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import type { LedgerFrameStore } from '../../gateway/ledger-store.ts'
import { signPayloadBytes } from '../../protocol/node/sign.ts'
import { CborWriter } from '../../protocol/portable/cbor.ts'
import { pack } from '../../protocol/portable/pack.ts'
import { waitFor } from '../helpers/wait.ts'
import { connectDevice, endClient, newDeviceKey, publishAcked, registerSim, subscribe, type SimKey } from '../gateway/helpers/devices.ts'

type Write = (w: CborWriter) => void

/** A version-1 payload of 1 s of ECG; `seq` writes key 2's value; `extra` entries are appended after the rest. */
function payloadBytes(key: SimKey, seq: Write, extra: Array<[Write, Write]> = []): Uint8Array {
  const fields: Array<[number, Write]> = [
    [0, (w) => w.uint(1)], [1, (w) => w.ascii(key.id)], [2, seq], [3, (w) => w.uint(1)], [4, (w) => w.uint(Date.now() - 1000)],
    [5, (w) => w.uint(250)], [6, (w) => w.bytes(pack(Array.from({ length: 250 }, (_, i) => 2048 + Math.round(300 * Math.sin(i / 10)))))],
    [13, (w) => w.uint(0)], [14, (w) => w.uint(0)], [16, (w) => w.ascii('test-1')],
  ]
  const w = new CborWriter(2048).mapHeader(fields.length + extra.length)
  for (const [k, v] of fields) v(w.uint(k))
  for (const [k, v] of extra) { k(w); v(w) }
  return w.copy()
}

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`
const controlTopic = (id: string) => `mhealth/dev/${id}/control`

/** The next NACK on the device's control topic. */
function nextNack(c: MqttClient, id: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer) => {
      if (topic !== controlTopic(id)) return
      const m = JSON.parse(payload.toString()) as Record<string, unknown>
      if (m.t !== 'nack') return
      c.off('message', on)
      resolve(m)
    }
    c.on('message', on)
  })
}

t.test('a signed frame the protocol forbids is NACKed and not stored; the next good frame is stored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-strict-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log: memoryLogger() })
  t.teardown(() => gw.close())
  const store = gw.store as LedgerFrameStore
  t.ok(store.ledger, 'the real ledger stores the frames')
  const url = `mqtt://127.0.0.1:${gw.ports.mqtt}`

  // bare (HMAC, verified inline) and se (ES256, verified in the worker pool)
  for (const profile of ['bare', 'se'] as const) {
    await t.test(`${profile} device`, async (t) => {
      const key = newDeviceKey(profile)
      registerSim(gw.registry, key, `patient-${profile}`)
      const dev = await connectDevice(url, key)
      t.teardown(() => endClient(dev))
      t.equal(await subscribe(dev, controlTopic(key.id)), 0)
      const cases: Array<[string, Uint8Array, string]> = [
        ['seq 50 under key 2, then 51 under the half-float key 2.0', payloadBytes(key, (w) => w.uint(50), [[(w) => w.float(2), (w) => w.uint(51)]]), 'cbor'],
        ['seq as the half-float 52.0', payloadBytes(key, (w) => w.float(52)), 'schema'],
        ['seq 2^48', payloadBytes(key, (w) => w.uint(2 ** 48)), 'schema'],
      ]
      const storedSeqs = async () => (await store.ledger.frames({ deviceId: key.id })).map((f) => f.seq)
      for (const [label, p, reason] of cases) {
        // Whichever comes first: the NACK, or (after the PUBACK) the frame in the ledger, as before the fix.
        let settled = false
        const nack = nextNack(dev, key.id).then((m) => m)
        const stored = publishAcked(dev, framesTopic(key.id), Buffer.from(signPayloadBytes(key, p)))
          .then(() => waitFor(async () => settled || (await storedSeqs()).length > 0, `${label}: a NACK or a stored frame`, 30_000))
          .then(async () => ({ t: 'stored', seqs: await storedSeqs() }))
        const m = (await Promise.race([nack, stored])) as Record<string, unknown>
        settled = true
        await stored
        t.equal(m.reason, reason, `${label}: NACK ${reason}${m.t === 'stored' ? `, but stored as seq ${JSON.stringify(m.seqs)}` : ''}`)
        t.equal(m.seq, null, `${label}: no seq claimed (refused before the payload was read)`)
        t.same(await storedSeqs(), [], `${label}: nothing stored`)
      }
      const good = Buffer.from(signPayloadBytes(key, payloadBytes(key, (w) => w.uint(53))))
      await publishAcked(dev, framesTopic(key.id), good)
      const stored = await store.ledger.frames({ deviceId: key.id })
      t.same(stored.map((f) => f.seq), [53], 'only the good frame is in the ledger')
      t.same(Buffer.from(stored[0]!.bytes!), good, 'its exact bytes')
      for (const seq of [50, 51, 52, 2 ** 48]) t.notOk(await store.hasFrame(key.id, seq), `nothing at seq ${seq}`)
    })
  }
  t.equal(gw.metrics.framesRejected.get({ reason: 'internal' }), 0, 'no frame was refused as internal')
  t.equal(gw.metrics.framesRejected.get({ reason: 'schema' }), 4, 'two schema refusals per device')
})
