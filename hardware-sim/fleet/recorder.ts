/**
 * A stand-in gateway for `mhealth sim record`: just enough for unmodified firmware to
 * stream with no real gateway. It answers `GET /api/time` (boards sync before CONNECT)
 * and `POST /api/devices` (so provisioning runs the same code path as against a gateway,
 * and the recorder learns each device's key), runs an MQTT broker on 127.0.0.1 that admits
 * the registered devices, and writes every frame PUBLISHed to `mhealth/dev/<id>/frames` to
 * `DIR/<id>/<seq>.cose` before the PUBACK goes out. It checks each frame against the
 * registered key and counts the ones that fail, but is not a security boundary: it binds
 * to loopback and exists to produce test vectors.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type Server as NetServer, type AddressInfo } from 'node:net'
import { mkdirSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import { verifyFrame, type DeviceKey } from '../../protocol/node/verify.ts'
import { fromHex } from '../../protocol/portable/bytes.ts'
import { Router } from '../../http/router.ts'
import { requestListener, type RequestContext } from '../../http/server.ts'
import { readJson } from '../../http/body.ts'
import { sendJson } from '../../http/respond.ts'
import { HttpError } from '../../http/errors.ts'

export interface RecordedDevice {
  id: string
  profile: 'se' | 'bare'
  /** SE profile: uncompressed P-256 public key, hex. */
  publicKey?: string
  /** Bare profile: HMAC secret, hex. */
  secret?: string
  patient?: string
}

export interface Recorder {
  httpUrl: string
  mqttPort: number
  devices: Map<string, RecordedDevice>
  /** Frames written, per device. */
  written: Map<string, number>
  stats: { frames: number; duplicates: number; invalid: number; bytes: number }
  close(): Promise<void>
}

function keyOf(d: RecordedDevice): DeviceKey {
  return d.profile === 'se'
    ? { profile: 'se', publicKey: fromHex(d.publicKey!) }
    : { profile: 'bare', secret: fromHex(d.secret!) }
}

export async function startRecorder(outDir: string): Promise<Recorder> {
  mkdirSync(outDir, { recursive: true })
  const devices = new Map<string, RecordedDevice>()
  const written = new Map<string, number>()
  const seen = new Set<string>()
  const stats = { frames: 0, duplicates: 0, invalid: 0, bytes: 0 }
  const { deviceIdFromPublicKey } = await import('../../protocol/portable/device-id.ts')
  const { nodeHash } = await import('../../protocol/node/hash-node.ts')

  // The same HTTP kit as the gateway's API: size-capped JSON bodies, JSON errors, 404s.
  const routes = new Router<RequestContext>()
    .get('/api/time', ({ res }) => sendJson(res, 200, { now: Date.now() }))
    .post('/api/devices', async ({ req, res }) => {
      const b = await readJson(req, { maxBytes: 16 * 1024 })
      let d: RecordedDevice
      if (b.profile === 'se' && typeof b.publicKey === 'string') {
        const id = deviceIdFromPublicKey(nodeHash, fromHex(b.publicKey))
        d = { id, profile: 'se', publicKey: b.publicKey, patient: b.patient as string | undefined }
      } else if (b.profile === 'bare' && typeof b.secret === 'string' && typeof b.id === 'string') {
        d = { id: b.id, profile: 'bare', secret: b.secret, patient: b.patient as string | undefined }
      } else throw new HttpError(400, 'expected {profile:"se", publicKey} or {profile:"bare", id, secret}')
      devices.set(d.id, d)
      sendJson(res, 201, { id: d.id })
    })
  const http: HttpServer = createHttpServer(requestListener((c) => routes.dispatch(c.method, c.path, c), { mapError: (e) => (e instanceof Error && !(e instanceof HttpError) ? new HttpError(400, e.message) : undefined) }))

  const aedes = await Aedes.createBroker({
    authenticate: (client, username, _password, cb) => {
      const ok = devices.has(client.id) && username === client.id
      if (ok) return cb(null, true)
      const e = new Error('not a recorded device') as Error & { returnCode: number }
      e.returnCode = 2
      cb(e, false)
    },
    authorizePublish: (client, packet, cb) => {
      const id = client?.id ?? ''
      if (packet.topic !== `mhealth/dev/${id}/frames`) return cb(new Error(`publish to ${packet.topic} refused`))
      const dev = devices.get(id)!
      const bytes = new Uint8Array(packet.payload as Buffer)
      let seq: number
      try {
        seq = verifyFrame(bytes, keyOf(dev)).payload.seq
      } catch {
        stats.invalid++
        return cb(null) // acknowledged, not written: the count shows up in the summary
      }
      const k = `${id}/${seq}`
      if (seen.has(k)) {
        stats.duplicates++
        return cb(null)
      }
      const dir = join(outDir, id)
      mkdirSync(dir, { recursive: true })
      // Written under a temporary name and renamed: a crash never leaves a torn .cose file.
      const tmp = join(dir, `.${seq}.tmp`)
      writeFileSync(tmp, bytes)
      renameSync(tmp, join(dir, `${seq}.cose`))
      seen.add(k)
      stats.frames++
      stats.bytes += bytes.length
      written.set(id, (written.get(id) ?? 0) + 1)
      cb(null)
    },
    // Frames are not forwarded anywhere: nobody subscribes to them here.
    authorizeForward: () => null,
  })
  const tcp: NetServer = createTcpServer((s) => aedes.handle(s))
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r))
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  return {
    httpUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    mqttPort: (tcp.address() as AddressInfo).port,
    devices,
    written,
    stats,
    async close() {
      http.closeAllConnections?.()
      await new Promise<void>((r) => http.close(() => r()))
      await new Promise<void>((r) => aedes.close(() => r()))
      await new Promise<void>((r) => tcp.close(() => r()))
    },
  }
}

/** DIR/devices.json: one entry per device (id, profile, publicKey or secret, patient). */
export function writeDevicesJson(outDir: string, devices: Iterable<RecordedDevice & Record<string, unknown>>): string {
  const path = join(outDir, 'devices.json')
  writeFileSync(path, JSON.stringify([...devices], null, 2) + '\n', { mode: 0o600 })
  return path
}
