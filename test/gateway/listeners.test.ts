/**
 * Every listener over real sockets: MQTT/TCP, MQTT/TLS with the self-signed
 * certificate made on first start (pinned by its SHA-256 fingerprint), MQTT over
 * WebSocket, HTTP; 0 turns a listener off; the CLI flags and fingerprint line.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import { startTestGateway, cleanup } from './helpers/gateway.ts'
import { connect, connectDevice, endClient, frame, newDeviceKey, publishAcked, registerSim } from './helpers/devices.ts'
import { spawnGateway } from './helpers/process.ts'
import { runCli } from '../helpers/cli.ts'

const framesTopic = (id: string) => `mhealth/dev/${id}/frames`

t.test('all four listeners', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwt-'))
  const gw = await startTestGateway({ mqttsPort: 'auto', wsPort: 'auto' }, { dir })
  t.teardown(() => cleanup(gw))
  t.ok(gw.ports.mqtt && gw.ports.mqtts && gw.ports.ws && gw.ports.http, 'all bound')
  t.match(gw.tlsFingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, 'SHA-256 fingerprint, colon hex')
  t.ok(gw.logs.some((e) => e.msg === 'created self-signed TLS certificate' && e.sha256 === gw.tlsFingerprint), 'fingerprint logged on first start')
  const k = newDeviceKey('se')
  registerSim(gw.registry, k, 'p-1')
  const ca = readFileSync(join(dir, 'tls', 'cert.pem'))

  await t.test('TLS: the certificate presented is the one fingerprinted; a frame is stored', async (t) => {
    const peer = await new Promise<PeerCertificate>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: gw.ports.mqtts!, ca }, () => {
        resolve(s.getPeerCertificate())
        s.end()
      })
      s.on('error', reject)
    })
    t.equal(peer.fingerprint256, gw.tlsFingerprint)
    const c = await connectDevice(`mqtts://127.0.0.1:${gw.ports.mqtts}`, k, { ca })
    await publishAcked(c, framesTopic(k.id), frame(k, 1))
    t.ok(gw.fileStore.hasFrame(k.id, 1))
    await endClient(c)
  })

  await t.test('TLS: a client that does not trust the certificate is not connected', async (t) => {
    const err = await connectDevice(`mqtts://127.0.0.1:${gw.ports.mqtts}`, k).catch((e: Error) => e)
    t.match(String(err), /self.signed|certificate/i)
  })

  await t.test('WebSocket: MQTT over ws:// with the same authentication and pipeline', async (t) => {
    const c = await connectDevice(`ws://127.0.0.1:${gw.ports.ws}`, k)
    await publishAcked(c, framesTopic(k.id), frame(k, 2))
    t.ok(gw.fileStore.hasFrame(k.id, 2))
    await endClient(c)
    const stranger = await connect(`ws://127.0.0.1:${gw.ports.ws}`, { clientId: newDeviceKey('se').id, username: 'x', password: Buffer.from('y') }).catch((e) => e)
    t.equal((stranger as { code?: number }).code, 2, 'unknown device refused over ws too')
    const plain = await fetch(`http://127.0.0.1:${gw.ports.ws}/`)
    t.equal(plain.status, 426, 'plain HTTP on the ws port: upgrade required')
  })

  await t.test('HTTP: healthz', async (t) => {
    const r = await fetch(`${gw.httpUrl}/healthz`)
    t.equal(r.status, 200)
    t.match(await r.json(), { ok: true })
  })
})

t.test('port 0 turns a listener off; the certificate is reused on restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-gwt-'))
  const a = await startTestGateway({ mqttPort: 0, mqttsPort: 'auto', wsPort: 0, httpPort: 0 }, { dir })
  t.same({ ...a.ports }, { mqtt: null, mqtts: a.ports.mqtts, ws: null, wss: null, http: null, https: null })
  const fp = a.tlsFingerprint
  await a.close()
  const b = await startTestGateway({ mqttPort: 0, mqttsPort: 'auto', wsPort: 0, httpPort: 0 }, { dir })
  t.equal(b.tlsFingerprint, fp, 'same certificate')
  t.notOk(b.logs.some((e) => e.msg === 'created self-signed TLS certificate'))
  await cleanup(b)
})

t.test('mhealth gateway CLI', async (t) => {
  const help = await runCli(['gateway', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--mqtts-port/)
  const bad = await runCli(['gateway', '--mqtt-port', '99999'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /mqtt-port: expected a port/)
  t.notMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace')
  const unknown = await runCli(['gateway', '--frobnicate'])
  t.equal(unknown.code, 2)

  const dir = mkdtempSync(join(tmpdir(), 'mh-gwt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const gp = await spawnGateway(dir, ['--mqtts-port', 'auto', '--ws-port', 'auto'])
  t.teardown(() => gp.kill9())
  t.ok(gp.ready.ports.mqtt && gp.ready.ports.mqtts && gp.ready.ports.ws && gp.ready.ports.http, 'ready line lists the ports')
  t.match(gp.stderr(), new RegExp(`fingerprint \\(pin this on devices\\): ${gp.ready.tlsSha256}`), 'fingerprint printed')
  t.equal(await gp.stop(), 0)
})
