/**
 * The one-command demo: a gateway (with its ledger), the dashboard on its HTTP listener,
 * and the ward's eight patients as virtual boards running the real firmware bundle,
 * provisioned through the gateway's admin API exactly as `mhealth provision` does.
 *
 * State lives under `dataDir`: `gateway/` (registry, ledger, keys), `boards/<n>/` (each
 * board's flash and secure element) and `ward.json` (who is who, the demo's passwords;
 * mode 0600). A second start reuses all of it, so the ledger and the boards' sequence
 * numbers continue.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { resolveConfig, type PortSpec } from '../gateway/config.ts'
import { startGateway, type Gateway } from '../gateway/gateway.ts'
import { jsonLogger } from '../gateway/log.ts'
import { mountDashboard, type MountedDashboard } from '../dashboard/mount.ts'
import { patientIdFromPublicKey } from '../ledger/consent.ts'
import { generateKey } from '../protocol/node/keys.ts'
import { createBoardRig, provisionRig, type BoardRig, type FirmwareConfig } from '../hardware-sim/rig.ts'
import { WARD, type PatientScenario } from './ward.ts'

export interface DemoOptions {
  dataDir: string
  host?: string
  httpPort?: PortSpec
  mqttPort?: PortSpec
  mqttsPort?: PortSpec
  wsPort?: PortSpec
  /** How many of the ward's patients to simulate (1..8, default 8). */
  patients?: number
  /** MIT-BIH records folder for the replays (synthetic rhythms stand in when absent). */
  mitdbDir?: string | null
  /** Progress messages (one line each). */
  say?: (line: string) => void
  /** Gateway log level on stderr (default warn: the demo prints its own progress). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error'
}

interface WardBed {
  patientId: string
  /** Patient's Ed25519 consent key (the demo stands in for the patients' own app). */
  patientKey: { privateKey: string; publicKey: string }
  deviceId: string
  /** The board's provisioned configuration (a bare board's secret included). */
  config: FirmwareConfig
}

interface WardFile {
  version: 1
  users: { clinician: { username: string; password: string }; admin: { username: string; password: string } }
  beds: WardBed[]
}

export interface Demo {
  gateway: Gateway
  dashboard: MountedDashboard
  url: string
  users: WardFile['users']
  patients: Array<{ name: string; bed: string; story: string; patientId: string; deviceId: string; profile: string }>
  rigs: BoardRig[]
  stop(): Promise<void>
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

function readWard(path: string): WardFile | null {
  if (!existsSync(path)) return null
  const w = JSON.parse(readFileSync(path, 'utf8')) as WardFile
  if (w.version !== 1 || !Array.isArray(w.beds)) throw new Error(`${path}: not a demo ward file (expected version 1); move it away to start a fresh demo`)
  return w
}

/** Written to a temp name and renamed, so a Ctrl-C mid-write never leaves half a file. */
function writeWard(path: string, w: WardFile): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, JSON.stringify(w, null, 2), { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

const password = (): string => randomBytes(9).toString('base64url')

export async function startDemo(o: DemoOptions): Promise<Demo> {
  const say = o.say ?? (() => {})
  const n = o.patients ?? WARD.length
  if (!Number.isInteger(n) || n < 1 || n > WARD.length) throw new RangeError(`patients: expected 1..${WARD.length}, got ${n}`)
  mkdirSync(o.dataDir, { recursive: true })
  const wardPath = join(o.dataDir, 'ward.json')
  const ward: WardFile = readWard(wardPath) ?? {
    version: 1,
    users: { clinician: { username: 'clinician', password: password() }, admin: { username: 'admin', password: password() } },
    beds: [],
  }

  const gw = await startGateway(
    resolveConfig({
      dataDir: join(o.dataDir, 'gateway'),
      host: o.host ?? '127.0.0.1',
      httpPort: o.httpPort ?? 8080,
      mqttPort: o.mqttPort ?? 1883,
      mqttsPort: o.mqttsPort ?? 8883,
      wsPort: o.wsPort ?? 8083,
    }),
    { log: jsonLogger(process.stderr, o.logLevel ?? 'warn') },
  )
  const rigs: BoardRig[] = []
  let dash: MountedDashboard | null = null
  const stop = async (): Promise<void> => {
    for (const r of rigs) r.board.stop()
    // Let the boards' run loops see the stop before their sockets go.
    await new Promise((r) => setTimeout(r, 60))
    for (const r of rigs) r.close()
    await gw.close()
  }
  try {
    const existing = new Set(gw.registry.listUsers().map((u) => u.username))
    const { clinician, admin } = ward.users
    if (!existing.has(clinician.username)) gw.registry.addUser(clinician.username, 'clinician', clinician.password)
    if (!existing.has(admin.username)) gw.registry.addUser(admin.username, 'admin', admin.password)

    // Patients: a consent key each, made once and kept in ward.json.
    for (let i = ward.beds.length; i < n; i++) {
      const k = generateKey('ed25519') as { privateKey: Uint8Array; publicKey: Uint8Array }
      ward.beds.push({ patientId: patientIdFromPublicKey(k.publicKey), patientKey: { privateKey: hex(k.privateKey), publicKey: hex(k.publicKey) }, deviceId: '', config: {} as FirmwareConfig })
    }
    writeWard(wardPath, ward)
    const beds = ward.beds.slice(0, n)

    dash = await mountDashboard(gw, {
      host: o.host ?? '127.0.0.1',
      patientKeys: Object.fromEntries(beds.map((b) => [b.patientId, { privateKey: unhex(b.patientKey.privateKey), publicKey: unhex(b.patientKey.publicKey) }])),
      patients: Object.fromEntries(beds.map((b, i) => [b.patientId, { name: WARD[i].name, location: WARD[i].bed }])),
    })
    const adminActor = { userId: admin.username, role: 'admin' as const }
    const httpUrl = `http://127.0.0.1:${gw.ports.http}`
    const adminToken = readFileSync(join(o.dataDir, 'gateway', 'admin.token'), 'utf8').trim()

    for (let i = 0; i < n; i++) {
      const s: PatientScenario = WARD[i]
      const bed = beds[i]
      const seed = 1000 + i
      const known = bed.deviceId !== '' && gw.registry.getDevice(bed.deviceId) !== null
      // A new board boots unconfigured (the firmware then only offers its provisioning helpers).
      const rig = await createBoardRig({
        id: `bed${i + 1}`, dir: join(o.dataDir, 'boards', String(i + 1)), seed, se: s.profile === 'se',
        ecg: s.ecg(seed, o.mitdbDir ?? null), ppg: s.ppg(seed), clock: Date.now(), boot: !known,
      })
      rigs.push(rig)
      if (known) {
        // Same board, same key: only the gateway's address may have changed since last time.
        bed.config = { ...bed.config, gw: { ...bed.config.gw!, host: '127.0.0.1', mqttPort: gw.ports.mqtt!, httpPort: gw.ports.http! } }
        rig.configure(bed.config)
      } else {
        say(`provisioning ${s.bed} (${s.name}): ${s.profile === 'se' ? 'ATECC608 key' : 'bare board, HMAC secret'}`)
        const p = await provisionRig(rig, { gatewayUrl: httpUrl, adminToken, mqttPort: gw.ports.mqtt!, profile: s.profile, patient: bed.patientId })
        bed.deviceId = p.id
        bed.config = p.config
        await dash.deps.grantConsent(adminActor, bed.patientId, clinician.username, 'live', null)
      }
      writeWard(wardPath, ward)
      rig.board.boot()
      rig.board.run({ speed: 1 }).catch((err: Error) => say(`${s.bed}: board stopped: ${err.message}`))
    }
    return {
      gateway: gw,
      dashboard: dash,
      url: dash.url,
      users: ward.users,
      patients: beds.map((b, i) => ({ name: WARD[i].name, bed: WARD[i].bed, story: WARD[i].story, patientId: b.patientId, deviceId: b.deviceId, profile: WARD[i].profile })),
      rigs,
      stop,
    }
  } catch (err) {
    await stop().catch(() => {})
    throw err
  }
}
