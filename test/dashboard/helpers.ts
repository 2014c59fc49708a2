/**
 * A real gateway (real ledger in a temp dir, real MQTT listener, real HTTP
 * listener) with the dashboard mounted, two users, patients whose consent keys
 * the test holds, and boards that publish signed frames over MQTT.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import type { MqttClient } from 'mqtt'
import { resolveConfig } from '../../gateway/config.ts'
import { startGateway, type Gateway } from '../../gateway/gateway.ts'
import { memoryLogger } from '../../gateway/log.ts'
import { patientIdFromPublicKey } from '../../ledger/consent.ts'
import { generateKey } from '../../protocol/node/keys.ts'
import { signFrame } from '../../protocol/node/sign.ts'
import { syntheticPayload } from '../../protocol/node/synthetic.ts'
import type { FramePayload } from '../../protocol/portable/frame.ts'
import { mountDashboard, type MountedDashboard, type MountDashboardOptions } from '../../dashboard/mount.ts'
import type { PatientKey } from '../../dashboard/gateway-deps.ts'
import { EcgSynth, type EcgSynthOptions } from '../../hardware-sim/signals/ecg-synth.ts'
import { connectDevice, endClient, newDeviceKey, publishAcked, registerSim, type SimKey } from '../gateway/helpers/devices.ts'

export const CLINICIAN = { username: 'alice', password: 'alice-ward-7' }
export const ADMIN = { username: 'root', password: 'root-admin-9' }

export interface TestPatient extends PatientKey {
  id: string
  name: string
  device: SimKey
}

export interface DashEnv {
  gw: Gateway
  dash: MountedDashboard
  dir: string
  base: string
  mqttUrl: string
  patients: TestPatient[]
  logs: ReturnType<typeof memoryLogger>['entries']
  close(): Promise<void>
}

export function newPatient(name: string): TestPatient {
  const k = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
  return { privateKey: k.privateKey, publicKey: k.publicKey, id: patientIdFromPublicKey(k.publicKey), name, device: newDeviceKey('se') }
}

export async function startDashEnv(n = 2, opts: MountDashboardOptions = {}): Promise<DashEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'mh-dash-'))
  const log = memoryLogger()
  const gw = await startGateway(resolveConfig({ dataDir: dir, mqttPort: 'auto', mqttsPort: 0, wsPort: 0, httpPort: 'auto' }), { log })
  gw.registry.addUser(CLINICIAN.username, 'clinician', CLINICIAN.password)
  gw.registry.addUser(ADMIN.username, 'admin', ADMIN.password)
  const patients: TestPatient[] = []
  for (let i = 0; i < n; i++) {
    const p = newPatient(`Patient ${String.fromCharCode(65 + i)}`)
    registerSim(gw.registry, p.device, p.id)
    patients.push(p)
  }
  const dash = await mountDashboard(gw, {
    ...opts,
    patientKeys: Object.fromEntries(patients.map((p) => [p.id, { privateKey: p.privateKey, publicKey: p.publicKey }])),
    patients: Object.fromEntries(patients.map((p, i) => [p.id, { name: p.name, location: `Bed ${i + 1}` }])),
  })
  return {
    gw,
    dash,
    dir,
    base: `http://127.0.0.1:${gw.ports.http}`,
    mqttUrl: `mqtt://127.0.0.1:${gw.ports.mqtt}`,
    patients,
    logs: log.entries,
    close: () => gw.close().finally(() => rmSync(dir, { recursive: true, force: true })),
  }
}

export interface HttpResult {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json<T = unknown>(): T
}

/** A tiny cookie-keeping HTTP client (one per simulated browser). */
export class Client {
  cookie = ''
  constructor(readonly base: string) {}

  req(method: string, path: string, body?: unknown): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body)
      const r = request(this.base + path, { method, headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const sc = res.headers['set-cookie']
          if (sc) this.cookie = sc[0].split(';')[0]
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: <T>() => JSON.parse(text) as T })
        })
      })
      r.on('error', reject)
      r.end(data)
    })
  }

  async login(u: { username: string; password: string }): Promise<void> {
    const r = await this.req('POST', '/api/dash/login', u)
    if (r.status !== 200) throw new Error(`login ${u.username}: ${r.status} ${r.body}`)
  }
}

export interface SseEvent {
  event: string
  data: Record<string, unknown>
}

/** Opens /api/dash/live and collects events; `next(pred)` waits for a matching one. */
export function openSse(c: Client, path = '/api/dash/live'): Promise<{ events: SseEvent[]; next(pred: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>; close(): void; status: number }> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = []
    const waiters: { pred: (e: SseEvent) => boolean; res: (e: SseEvent) => void }[] = []
    const r = request(c.base + path, { headers: { cookie: c.cookie, accept: 'text/event-stream' } }, (res) => {
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let i
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i)
          buf = buf.slice(i + 2)
          let event = 'message'
          let data = ''
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data += line.slice(6)
          }
          if (!data) continue
          const e = { event, data: JSON.parse(data) as Record<string, unknown> }
          events.push(e)
          for (const w of [...waiters]) if (w.pred(e)) {
            waiters.splice(waiters.indexOf(w), 1)
            w.res(e)
          }
        }
      })
      resolve({
        events,
        status: res.statusCode ?? 0,
        next(pred, ms = 20_000) {
          const found = events.find(pred)
          if (found) return Promise.resolve(found)
          return new Promise((res2, rej2) => {
            const timer = setTimeout(() => rej2(new Error(`no matching SSE event within ${ms} ms; got ${events.map((e) => e.event).join(',')}`)), ms)
            waiters.push({ pred, res: (e) => (clearTimeout(timer), res2(e)) })
          })
        },
        close: () => r.destroy(),
      })
    })
    r.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err)
    })
    r.end()
  })
}

/**
 * A board: connects with a fresh auth token and publishes 1-second signed frames
 * with contiguous samples (synthetic ECG and PPG), optionally with derived
 * values the board computed itself (`derive(seq)`).
 */
export class Board {
  seq = 0
  client: MqttClient | null = null
  constructor(readonly key: SimKey, readonly url: string, readonly t0: number, readonly derive: (seq: number) => Partial<FramePayload> = () => ({})) {}

  async connect(): Promise<void> {
    this.client = await connectDevice(this.url, this.key)
  }

  frame(seq: number): Buffer {
    const p = syntheticPayload(this.key.id, { seconds: 1, seq, seed: 7, t0: this.t0 + seq * 1000 })
    return Buffer.from(signFrame(this.key, { ...p, ...this.derive(seq) }))
  }

  async send(count = 1): Promise<void> {
    for (let i = 0; i < count; i++) await publishAcked(this.client!, `mhealth/dev/${this.key.id}/frames`, this.frame(this.seq++))
  }

  async close(): Promise<void> {
    if (this.client) await endClient(this.client)
  }
}

/** AD8232 behind a 12-bit ADC at 3.3 V, gain 100: counts per mV around mid-scale. */
const COUNTS_PER_MV = (4096 / 3300) * 100

/**
 * A synthetic patient's ECG (hardware-sim's ECGSYN, with `pvcRate` or `af`) as the ECG lane of
 * 1-second version-1 frames (250 Hz AD8232 codes): `ecgOf(seq)`, asked for in frame order. Use it
 * as a Board's `derive` (`(seq) => ({ ecg: ecgOf(seq) })`) or over a syntheticPayload.
 */
export function synthEcg(o: EcgSynthOptions): (seq: number) => number[] {
  const syn = new EcgSynth(o)
  let next = 0
  return (seq) => {
    if (seq < next) throw new Error(`synthEcg: frames in order, got ${seq} after ${next - 1}`)
    next = seq + 1
    const ecg: number[] = []
    for (let i = 0; i < 250; i++) ecg.push(Math.max(0, Math.min(4095, Math.round(2048 + syn.mv(seq * 1000 + i * 4) * COUNTS_PER_MV))))
    return ecg
  }
}
