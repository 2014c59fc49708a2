/**
 * Gateway configuration: one commented defaults object, merged with a JSON config
 * file and then command-line options (later wins). Ports: a number, 0 = listener
 * off, or 'auto' = an ephemeral port chosen by the OS (tests; the ready line
 * reports the bound ports).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'

export type PortSpec = number | 'auto'

export interface GatewayConfig {
  /** State directory: registry, gateway key, admin token, TLS certificate, frame store. */
  dataDir: string
  /** Address every listener binds unless its own `<listener>Host` says otherwise (`0.0.0.0` to serve the ward network). */
  host: string
  mqttPort: PortSpec
  mqttsPort: PortSpec
  wsPort: PortSpec
  httpPort: PortSpec
  /** Ledger peer sync for replicas (`mhealth ledger serve --peer`); off (0) by default: it serves patients' frames. */
  peerPort: PortSpec
  /** HTTP API and dashboard over TLS (same certificate as MQTTS). Off by default: existing setups keep their ports. */
  httpsPort: PortSpec
  /** MQTT over secure WebSocket (wss://), same certificate. Off by default. */
  wssPort: PortSpec
  /**
   * Per-listener bind addresses, each defaulting to `host`: e.g. MQTTS on the ward
   * network (`mqttsHost: '0.0.0.0'`) while the admin HTTP API stays on 127.0.0.1.
   */
  mqttHost?: string
  mqttsHost?: string
  wsHost?: string
  wssHost?: string
  httpHost?: string
  httpsHost?: string
  /** PEM files; when both are absent a self-signed certificate is made in dataDir on first start. */
  tlsCert?: string
  tlsKey?: string
  /** Conformance testing only: clients without credentials are admitted with no topic ACLs. */
  allowAnonymous: boolean
  /** Largest |token iat - gateway time| accepted at CONNECT. */
  authWindowMs: number
  limits: {
    /** Largest MQTT packet (any type) accepted; the connection is dropped past it. */
    maxPacketBytes: number
    /** Largest frame payload. */
    maxFrameBytes: number
    /** Per device: sustained frames/s and burst (a board sends ~1 frame/s). */
    ratePerSec: number
    rateBurst: number
    /** A frame held back longer than this by the rate limit is refused instead. */
    maxThrottleMs: number
    futureSkewMs: number
    maxAgeMs: number
    /** Concurrent MQTT connections accepted (all listeners). */
    maxConnections: number
    /** A packet must arrive whole within this time of its first byte, or the connection is dropped. */
    packetTimeoutMs?: number
    /**
     * Bytes queued for one client's socket beyond which messages to it (live frames,
     * control messages) are dropped instead of buffered: a slow or stalled reader
     * cannot grow the gateway's memory.
     */
    maxOutboundBytes?: number
  }
  /**
   * 'inline' verifies on the event loop; 'pool' in worker threads; 'auto' sends ES256
   * frames to the pool and keeps HMAC inline (bench/gateway-verify.ts).
   */
  verify: 'inline' | 'pool' | 'auto'
  /** Pool size; 0 = one per core but one. */
  verifyWorkers: number
  /** Ledger: prune frame payloads older than this many days (hashes and headers stay). Unset = keep all. */
  retentionDays?: number
  /** Redis URL: share subscriptions and sessions with other gateway processes. */
  redisUrl?: string
  /** Registry file (default `<dataDir>/registry.sqlite`); gateways of one cluster on one host share it. */
  registryFile?: string
  logLevel: 'debug' | 'info' | 'warn' | 'error'
  /** Serve the ward dashboard on the HTTP (and HTTPS) listener (`mhealth gateway --dashboard`). */
  dashboard: boolean
}

export const defaults: GatewayConfig = {
  dataDir: './data',
  host: '127.0.0.1',
  mqttPort: 1883,
  mqttsPort: 8883,
  wsPort: 8080,
  httpPort: 8081,
  peerPort: 0,
  dashboard: false,
  httpsPort: 0,
  wssPort: 0,
  allowAnonymous: false,
  authWindowMs: 5 * 60_000, // boards sync from /api/time; five minutes covers RTC drift between syncs
  limits: {
    maxPacketBytes: 64 * 1024, // a frame is a few KB; nothing legitimate is larger
    maxFrameBytes: 16 * 1024,
    ratePerSec: 50,
    rateBurst: 200, // a board flushing its offline buffer after reconnect
    maxThrottleMs: 5_000,
    futureSkewMs: 5 * 60_000,
    maxAgeMs: 30 * 24 * 3600_000, // a board may buffer a month offline on its flash
    maxConnections: 5_000,
    maxOutboundBytes: 1024 * 1024,
    packetTimeoutMs: 15_000, // a frame takes milliseconds; TCP retransmits on poor WiFi, seconds
  },
  verify: 'auto',
  verifyWorkers: 0,
  logLevel: 'info',
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] }
export type ConfigInput = DeepPartial<GatewayConfig>

/** The listeners, by the name their `<name>Port` and `<name>Host` keys (and BoundPorts) use. */
export const LISTENERS = ['mqtt', 'mqtts', 'ws', 'wss', 'http', 'https'] as const
export type ListenerName = (typeof LISTENERS)[number]

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** A bind address: an IPv4/IPv6 literal or a host name (resolved by listen()). */
export function parseHost(v: unknown, name: string): string {
  if (typeof v === 'string' && (isIP(v) !== 0 || HOSTNAME.test(v))) return v
  throw new ConfigError(`${name}: expected an IP address or host name to bind (e.g. 127.0.0.1, 0.0.0.0, ::), got ${JSON.stringify(v)}`)
}

/** Where listener `l` binds: its own `<l>Host`, else `host`. */
export function hostOf(c: GatewayConfig, l: ListenerName): string {
  return c[`${l}Host`] ?? c.host
}

export function parsePort(v: unknown, name: string): PortSpec {
  if (v === 'auto') return 'auto'
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name}: expected a port 0-65535 or 'auto', got ${JSON.stringify(v)}`)
  return n
}

function posInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`${name}: expected a positive number, got ${JSON.stringify(v)}`)
  return v
}

/** Merges layers over the defaults and validates every field. */
export function resolveConfig(...layers: ConfigInput[]): GatewayConfig {
  let c: GatewayConfig = structuredClone(defaults)
  for (const l of layers) {
    const { limits, ...rest } = l
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v
    if (limits) for (const [k, v] of Object.entries(limits)) if (v !== undefined) (c.limits as unknown as Record<string, unknown>)[k] = v
  }
  const known = new Set(Object.keys(defaults).concat(['tlsCert', 'tlsKey', 'redisUrl', 'retentionDays', 'registryFile'], LISTENERS.map((l) => `${l}Host`)))
  for (const k of Object.keys(c)) if (!known.has(k)) throw new ConfigError(`unknown config key '${k}'`)
  for (const k of Object.keys(c.limits)) if (!(k in defaults.limits)) throw new ConfigError(`unknown config key 'limits.${k}'`)
  c = { ...c, host: parseHost(c.host, 'host') }
  for (const l of LISTENERS) {
    c[`${l}Port`] = parsePort(c[`${l}Port`], `${l}Port`)
    if (c[`${l}Host`] !== undefined) c[`${l}Host`] = parseHost(c[`${l}Host`], `${l}Host`)
  }
  if (typeof c.dashboard !== 'boolean') throw new ConfigError(`dashboard: expected true or false, got ${JSON.stringify(c.dashboard)}`)
  c.peerPort = parsePort(c.peerPort, 'peerPort')
  for (const [k, v] of Object.entries(c.limits)) posInt(v, `limits.${k}`)
  posInt(c.authWindowMs, 'authWindowMs')
  if (c.retentionDays !== undefined) posInt(c.retentionDays, 'retentionDays')
  if (typeof c.verifyWorkers !== 'number' || !Number.isInteger(c.verifyWorkers) || c.verifyWorkers < 0 || c.verifyWorkers > 64)
    throw new ConfigError(`verifyWorkers: expected an integer 0-64, got ${JSON.stringify(c.verifyWorkers)}`)
  if (typeof c.dataDir !== 'string' || c.dataDir === '') throw new ConfigError(`dataDir: expected a directory path, got ${JSON.stringify(c.dataDir)}`)
  if (!['inline', 'pool', 'auto'].includes(c.verify)) throw new ConfigError(`verify: expected inline, pool or auto, got ${JSON.stringify(c.verify)}`)
  if (!['debug', 'info', 'warn', 'error'].includes(c.logLevel)) throw new ConfigError(`logLevel: expected debug, info, warn or error, got ${JSON.stringify(c.logLevel)}`)
  if (Boolean(c.tlsCert) !== Boolean(c.tlsKey)) throw new ConfigError('tlsCert and tlsKey must be given together')
  return c
}

export function readConfigFile(path: string): ConfigInput {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`)
  }
  try {
    const v = JSON.parse(text) as unknown
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object')
    return v as ConfigInput
  } catch (err) {
    throw new ConfigError(`config ${path} is not valid: ${(err as Error).message}`)
  }
}
