/**
 * A minimal stand-in for the gateway's device-facing side, for firmware tests: Aedes over
 * TCP with CONNECT authentication by auth token (protocol/node verifyAuthToken, counter
 * strictly increasing), GET /api/time, and every frame verified on arrival.
 */
import net from 'node:net'
import http from 'node:http'
import { Aedes } from 'aedes'
import { verifyAuthToken, verifyFrame, type DeviceKey } from '../../../protocol/node/verify.ts'
import type { DecodedFrame } from '../../../protocol/node/decode.ts'

export interface Arrival {
  bytes: Buffer
  frame: DecodedFrame | null
  error: string | null
  dup: boolean
}

export async function startMiniGateway(devices: Map<string, DeviceKey>) {
  const broker = await Aedes.createBroker()
  const lastCounter = new Map<string, number>()
  const authLog: { id: string; ok: boolean; why: string }[] = []
  const arrivals: Arrival[] = []
  broker.authenticate = (client, user, pass, done) => {
    const key = devices.get(client.id)
    let why = ''
    try {
      if (!key || user !== client.id || !pass) throw new Error('unknown device or no token')
      const tok = verifyAuthToken(new Uint8Array(pass), key)
      if (tok.claims.deviceId !== client.id) throw new Error('token for another device')
      if (tok.claims.counter <= (lastCounter.get(client.id) ?? -1)) throw new Error(`counter ${tok.claims.counter} not above ${lastCounter.get(client.id)}`)
      if (Math.abs(tok.claims.iatMs - Date.now()) > 5 * 60_000) throw new Error(`iat ${tok.claims.iatMs} outside the window`)
      lastCounter.set(client.id, tok.claims.counter)
    } catch (e) {
      why = (e as Error).message
    }
    authLog.push({ id: client.id, ok: !why, why })
    done(null, !why)
  }
  broker.authorizePublish = (client, packet, cb) => {
    if (!client || packet.topic !== `mhealth/dev/${client.id}/frames`) return cb(new Error('topic'))
    const key = devices.get(client.id)!
    const a: Arrival = { bytes: Buffer.from(packet.payload as Buffer), frame: null, error: null, dup: !!packet.dup }
    try {
      a.frame = verifyFrame(new Uint8Array(a.bytes), key)
    } catch (e) {
      a.error = (e as Error).message
    }
    arrivals.push(a)
    cb(null)
  }
  const mqttServer = net.createServer(broker.handle)
  await new Promise<void>((r) => mqttServer.listen(0, '127.0.0.1', () => r()))
  const httpServer = http.createServer((req, res) => {
    if (req.url === '/api/time') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ now: Date.now() }))
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', () => r()))
  return {
    broker, arrivals, authLog,
    mqttPort: (mqttServer.address() as net.AddressInfo).port,
    httpPort: (httpServer.address() as net.AddressInfo).port,
    async close() {
      await new Promise<void>((r) => broker.close(() => r()))
      await new Promise<void>((r) => mqttServer.close(() => r()))
      httpServer.closeAllConnections()
      await new Promise<void>((r) => httpServer.close(() => r()))
    },
  }
}
