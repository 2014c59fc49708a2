import { print, type Command, type CliIO } from '../command.ts'
import { parseCli, requireOpt, intOpt, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { boardOptions, boardTarget, withBoard, type ReplLink } from '../board-link.ts'
import { CFG_FILE, DEFAULTS, RANGE, type Config } from '../../firmware/config.ts'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'
import type { DeviceRegistration } from '../../protocol/node/admin-client.ts'

export interface ProvisionPlan {
  gatewayHost: string
  httpPort: number
  mqttPort: number
  ssid: string
  pass?: string
}

/** `http://host:port` and `SSID[:PASS]` checked and split. */
export function parseTargets(gateway: string, wifi: string, mqttPort: number): ProvisionPlan {
  let u: URL
  try {
    u = new URL(gateway)
  } catch {
    throw new UsageError(`--gateway: expected a URL like http://10.0.0.2:8081, got '${gateway}'`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--gateway: expected http:// or https://, got '${u.protocol}'`)
  const httpPort = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  const i = wifi.indexOf(':')
  const ssid = i < 0 ? wifi : wifi.slice(0, i)
  if (!ssid || ssid.length > 32) throw new UsageError(`--wifi: expected SSID[:PASS] with an SSID of 1..32 characters, got '${wifi}'`)
  const pass = i < 0 ? undefined : wifi.slice(i + 1)
  if (pass !== undefined && pass.length > 0 && (pass.length < 8 || pass.length > 63)) throw new UsageError('--wifi: a WPA2 passphrase has 8..63 characters')
  return { gatewayHost: u.hostname, httpPort, mqttPort, ssid, pass }
}

/**
 * The gateway admin token: the one given, else the gateway data directory's admin.token;
 * a usage error saying `whenMissing` when there is neither (`provision`, `sim`).
 */
export async function adminToken(token: string | undefined, dataDir: string | undefined, whenMissing: string): Promise<string> {
  if (token) return token
  if (!dataDir) throw new UsageError(whenMissing)
  const { readFile } = await import('node:fs/promises')
  const { join } = await import('node:path')
  try {
    return (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim()
  } catch (e) {
    throw new CliError(`cannot read the admin token in ${dataDir}: ${(e as Error).message}`)
  }
}

/** POST /api/devices on the gateway's admin API; returns the registered device ID. */
export async function registerWithGateway(gateway: string, token: string, body: DeviceRegistration): Promise<string> {
  const { AdminClient, AdminApiError, GatewayUnreachableError } = await import('../../protocol/node/admin-client.ts')
  let dev: { id?: unknown }
  try {
    dev = await new AdminClient(gateway, token).register(body)
  } catch (e) {
    if (e instanceof GatewayUnreachableError) throw new CliError(`cannot reach the gateway at ${gateway}: ${e.reason}`)
    if (e instanceof AdminApiError) throw new CliError(`the gateway refused the registration (HTTP ${e.status}): ${e.body.slice(0, 300)}`)
    throw e
  }
  if (typeof dev.id !== 'string') throw new CliError(`unexpected gateway answer: ${JSON.stringify(dev).slice(0, 200)}`)
  return dev.id
}

/**
 * Asks the gateway for its device list with the admin token, before the board is touched:
 * reading the key personalises a blank secure element for good, so a typo in --gateway or
 * a stale token must fail first, with nothing done.
 */
export async function checkGatewayAccess(gateway: string, token: string): Promise<void> {
  const { AdminClient, AdminApiError, GatewayUnreachableError } = await import('../../protocol/node/admin-client.ts')
  const untouched = 'nothing was done to the board'
  try {
    await new AdminClient(gateway, token).list()
  } catch (e) {
    if (e instanceof GatewayUnreachableError) throw new CliError(`cannot reach the gateway at ${gateway}: ${e.reason} (${untouched})`)
    if (e instanceof AdminApiError && (e.status === 401 || e.status === 403)) throw new CliError(`the gateway at ${gateway} refused the admin token (HTTP ${e.status}): check --token or --data (${untouched})`)
    if (e instanceof AdminApiError) throw new CliError(`${gateway} does not answer like an mhealth gateway (GET /api/devices: HTTP ${e.status}) (${untouched})`)
    throw new CliError(`${gateway} does not answer like an mhealth gateway: ${(e as Error).message} (${untouched})`)
  }
}

/** The board's SE public key, read through the firmware's mhPubKey() (which personalises a blank SE first). */
async function readSePublicKey(link: ReplLink): Promise<Uint8Array> {
  link.send('mhPubKey()')
  const m = await link.waitFor(/PUBKEY(-ERROR)? ([^\r\n]+)/, 5000, 'secure element public key')
  if (m[1]) throw new CliError(`the secure element did not give a public key: ${m[2]}`)
  let pub: Uint8Array
  try {
    pub = fromHex(m[2]!.trim())
  } catch {
    throw new CliError(`the board sent a public key that is not hex: ${m[2]!.trim().slice(0, 40)}`)
  }
  if (pub.length !== 65) throw new CliError(`the board sent a ${pub.length}-byte public key, expected 65`)
  return pub
}

async function provision(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, {
    ...boardOptions, gateway: { type: 'string' }, wifi: { type: 'string' },
    'mqtt-port': { type: 'string' }, profile: { type: 'string' }, token: { type: 'string' }, data: { type: 'string' },
    patient: { type: 'string' }, 'tls-fingerprint': { type: 'string' }, 'ecg-hz': { type: 'string' }, 'window-s': { type: 'string' },
  })
  const board = boardTarget(p)
  const gateway = requireOpt(p, 'gateway')
  const plan = parseTargets(gateway, requireOpt(p, 'wifi'), intOpt(p, 'mqtt-port', DEFAULTS.mqttPort, 1, 65535))
  const profile = choiceOpt(p, 'profile', ['se', 'bare'] as const, 'se')
  const patient = stringOpt(p, 'patient') ?? 'unassigned'
  const fp = stringOpt(p, 'tls-fingerprint')
  if (fp !== undefined && !/^([0-9a-fA-F]{2}:?){32}$/.test(fp)) throw new UsageError(`--tls-fingerprint: expected a SHA-256 fingerprint (64 hex digits), got '${fp}'`)
  const ecgHz = intOpt(p, 'ecg-hz', DEFAULTS.ecgHz, RANGE.ecgHzMin, RANGE.ecgHzMax)
  const windowS = intOpt(p, 'window-s', DEFAULTS.windowS, RANGE.windowSMin, RANGE.windowSMax)
  const token = await adminToken(stringOpt(p, 'token'), stringOpt(p, 'data'), 'registering needs the gateway admin token: pass --token TOKEN or --data GATEWAY_DATA_DIR')
  const { newIdentity, registration } = await import('../../protocol/node/admin-client.ts')
  await checkGatewayAccess(gateway, token)

  return withBoard(board, async (link) => {
    // Run the flashed firmware (unprovisioned it only defines its REPL helpers).
    await link.restart('load()', 500)
    const hasFw = await link.call('typeof mhPubKey', 3000, 'firmware check')
    if (hasFw !== 'function') throw new CliError("the board does not run the mhealth firmware; run 'mhealth flash' first")

    const { id, key } = newIdentity(profile === 'se' ? await readSePublicKey(link) : null)
    const registered = await registerWithGateway(gateway, token, registration(id, key, patient))
    if (registered !== id) throw new CliError(`the gateway registered ${registered}, expected ${id}`)
    const cfg: Config = {
      ...(key.profile === 'se' ? { slot: DEFAULTS.slot } : { secret: toHex(key.secret) }),
      id, profile,
      wifi: { ssid: plan.ssid, pass: plan.pass },
      gw: { host: plan.gatewayHost, mqttPort: plan.mqttPort, httpPort: plan.httpPort, tls: !!fp, fp: fp?.replace(/:/g, '').toLowerCase() },
      ecgHz, windowS,
      // A lower bound for the board's clock until its first sync with the gateway.
      t: Date.now(),
    }
    const ok = await link.call(`require("Storage").writeJSON(${JSON.stringify(CFG_FILE)},${JSON.stringify(cfg)})`, 5000, 'write configuration')
    if (ok !== true) throw new CliError('writing the configuration to Storage failed')
    const back = (await link.call(`require("Storage").readJSON(${JSON.stringify(CFG_FILE)},true)`, 5000, 'read back configuration')) as { id?: string } | undefined
    if (!back || back.id !== id) throw new CliError('the configuration read back from Storage does not match')
    link.send('load()')
    print(io, id)
    io.stderr.write(`provisioned ${profile} device ${id}, registered with ${gateway}; the board restarted with its configuration\n`)
    return 0
  })
}

export const command: Command = {
  name: 'provision',
  summary: "read a board's key, register it with the gateway and write its configuration",
  usage: [
    'Usage: mhealth provision --port PORT --gateway URL --wifi SSID[:PASS] [options]',
    '',
    'First checks that the gateway answers and accepts the admin token; the board is not',
    "touched otherwise. Then, in one step: reads the secure element's public key through the",
    'firmware (or makes a bare-profile HMAC secret), registers the device with the gateway',
    'admin API, writes WiFi, gateway address and TLS fingerprint to Storage, restarts the',
    'board, prints the device ID.',
    '',
    'Options:',
    '  --port PORT              serial device or tcp://HOST:PORT (board already flashed)',
    `  --baud N                 serial speed (default ${DEFAULTS.baud})`,
    '  --gateway URL            gateway HTTP API, e.g. http://10.0.0.2:8081 (its --http-port)',
    `  --mqtt-port N            gateway MQTT port (default ${DEFAULTS.mqttPort})`,
    '  --wifi SSID[:PASS]       network the board joins',
    '  --profile se|bare        secure element (default) or HMAC secret',
    '  --token TOKEN            gateway admin token, or',
    "  --data DIR               the gateway's data directory (reads DIR/admin.token)",
    '  --patient ID             patient the device is assigned to (default unassigned)',
    '  --tls-fingerprint HEX    SHA-256 of the gateway certificate (enables TLS)',
    `  --ecg-hz N               ECG rate ${RANGE.ecgHzMin}..${RANGE.ecgHzMax} (default ${DEFAULTS.ecgHz})`,
    `  --window-s N             seconds per frame ${RANGE.windowSMin}..${RANGE.windowSMax} (default ${DEFAULTS.windowS})`,
  ].join('\n'),
  run: provision,
}
