import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { group, print, type Command } from '../command.ts'
import { parseCli, requireOpt, stringOpt, type Parsed } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import type { DeviceRegistration, DeviceView } from '../../protocol/node/admin-client.ts'

/**
 * Two ways to reach the registry, same commands:
 *   --data DIR   open DIR/registry.sqlite directly (safe next to a running gateway:
 *                SQLite WAL; the gateway notices a revocation within half a second)
 *   --url URL    the gateway's HTTP admin API; token from --token or DIR/admin.token
 *                (a revocation disconnects the device at once)
 */
const TARGET = `Target (one of):
  --data DIR      gateway data directory (default ./data): edits DIR/registry.sqlite directly
  --url URL       gateway HTTP API (e.g. http://127.0.0.1:8081); admin token from
                  --token TOKEN or the admin.token file in --data DIR`

/** The registry, opened directly or through the admin API; the body is checked by registerDevice either way. */
interface Backend {
  register(body: Record<string, unknown>): Promise<object>
  revoke(id: string): Promise<object>
  move(id: string, patient: string): Promise<object>
  reactivate(id: string): Promise<object>
  delete(id: string): Promise<object>
  list(): Promise<Array<DeviceView | Record<string, unknown>>>
  show(id: string): Promise<object>
  close(): void
}

const targetOpts = { data: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } } as const

async function backend(p: Parsed): Promise<Backend> {
  const url = stringOpt(p, 'url')
  const dir = stringOpt(p, 'data') ?? './data'
  if (url) {
    let token = stringOpt(p, 'token')
    if (!token) {
      const f = join(dir, 'admin.token')
      if (!existsSync(f)) throw new UsageError(`--url needs --token TOKEN or --data DIR holding admin.token (no ${f})`)
      token = readFileSync(f, 'utf8').trim()
    }
    let base: URL
    try {
      base = new URL(url)
    } catch {
      throw new UsageError(`--url: expected an http(s) URL, got '${url}'`)
    }
    const { AdminClient, AdminApiError, GatewayUnreachableError } = await import('../../protocol/node/admin-client.ts')
    const api = new AdminClient(base, token)
    const call = async <T>(f: () => Promise<T>): Promise<T> => {
      try {
        return await f()
      } catch (err) {
        if (err instanceof GatewayUnreachableError) throw new CliError(`cannot reach ${err.origin}: ${err.reason}`)
        if (err instanceof AdminApiError) throw new CliError(err.message)
        throw err
      }
    }
    return {
      register: (b) => call(() => api.register(b as DeviceRegistration)),
      revoke: (id) => call(() => api.revoke(id)),
      move: (id, patient) => call(() => api.move(id, patient)),
      reactivate: (id) => call(() => api.reactivate(id)),
      delete: (id) => call(() => api.delete(id)),
      list: () => call(() => api.list()),
      show: (id) => call(() => api.show(id)),
      close() {},
    }
  }
  const { DeviceRegistry, RegistryError, publicView } = await import('../../gateway/registry.ts')
  const { registerDevice } = await import('../../gateway/devices.ts')
  const { protocolCodec } = await import('../../gateway/protocol-codec.ts')
  const file = join(dir, 'registry.sqlite')
  const mustExist = () => {
    if (!existsSync(file)) throw new CliError(`no registry at ${file} (wrong --data? the gateway creates it on first start)`)
  }
  // A mistyped --data must not quietly start a second registry the gateway never reads.
  const mayCreate = () => {
    if (!existsSync(file) && !p.values.create) throw new CliError(`no registry at ${file}: ${dir} is not a gateway data directory (wrong --data? the gateway creates the registry on first start; --create makes a new one to fill before then)`)
  }
  let reg: InstanceType<typeof DeviceRegistry> | null = null
  const open = () => (reg ??= new DeviceRegistry(file))
  const wrap = async <T>(f: () => T): Promise<T> => {
    try {
      return f()
    } catch (err) {
      if (err instanceof RegistryError) throw new CliError(err.message)
      throw err
    }
  }
  return {
    register: (b) => wrap(() => {
      mayCreate()
      return publicView(registerDevice(open(), protocolCodec, b))
    }),
    revoke: (id) => wrap(() => {
      mustExist()
      const changed = open().revoke(id)
      return { id, revoked: true, alreadyRevoked: !changed }
    }),
    move: (id, patient) => wrap(() => {
      mustExist()
      return { id, ...open().move(id, patient) }
    }),
    reactivate: (id) => wrap(() => {
      mustExist()
      return { id, reactivated: true, wasActive: !open().reactivate(id) }
    }),
    delete: (id) => wrap(() => {
      mustExist()
      return { id, deleted: true, alreadyDeleted: !open().delete(id) }
    }),
    list: () => wrap(() => {
      mustExist()
      return open().listDevices().map(publicView)
    }),
    show: (id) => wrap(() => {
      mustExist()
      const d = open().getDevice(id)
      if (!d) throw new CliError(`device ${id} is not registered`)
      return publicView(d)
    }),
    close: () => reg?.close(),
  }
}

async function withBackend<T>(p: Parsed, f: (b: Backend) => Promise<T>): Promise<T> {
  const b = await backend(p)
  try {
    return await f(b)
  } finally {
    b.close()
  }
}

const register: Command = {
  name: 'register',
  summary: 'Register a device for a patient (from its key file, or a public key / secret)',
  usage: `Usage: mhealth device register --patient ID (--key FILE | --profile se --public-key HEX | --profile bare --id ID --secret HEX) [--create] [target]

  --patient ID       the patient the device belongs to (use the ledger patient ID, pt-..., for
                     consent records to apply to it)
  --key FILE         a device key file (mhealth keygen): p256 -> profile se, hmac -> profile bare;
                     only the public part (or the bare secret) is stored
  --profile se       secure element (ATECC608): --public-key is the 65-byte uncompressed
                     P-256 key (hex); the device ID is derived from it
  --profile bare     HMAC board: --id is its device ID, --secret the 32-byte secret (hex)

${TARGET}
  --create        with --data: create DIR/registry.sqlite if it does not exist yet (to register
                  devices before the gateway's first start); without it a directory that holds
                  no registry is refused

Prints the registered device as JSON.`,
  async run(argv, io) {
    const p = parseCli(argv, { ...targetOpts, create: { type: 'boolean' }, patient: { type: 'string' }, key: { type: 'string' }, profile: { type: 'string' }, 'public-key': { type: 'string' }, id: { type: 'string' }, secret: { type: 'string' } })
    const patient = requireOpt(p, 'patient')
    const keyFile = stringOpt(p, 'key')
    let body: Record<string, unknown>
    if (keyFile) {
      if (stringOpt(p, 'profile') || stringOpt(p, 'public-key') || stringOpt(p, 'secret')) throw new UsageError('--key replaces --profile/--public-key/--secret; give one or the other')
      let k: Record<string, unknown>
      try {
        k = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, unknown>
      } catch (err) {
        throw new CliError(`cannot read key file ${keyFile}: ${(err as Error).message}`)
      }
      const { inputFromKeyJson } = await import('../../gateway/devices.ts')
      try {
        body = inputFromKeyJson(k, patient) as Record<string, unknown>
      } catch (err) {
        throw new CliError((err as Error).message)
      }
    } else {
      const profile = stringOpt(p, 'profile')
      if (profile === 'se') body = { profile, publicKey: requireOpt(p, 'public-key'), id: stringOpt(p, 'id'), patient }
      else if (profile === 'bare') body = { profile, id: requireOpt(p, 'id'), secret: requireOpt(p, 'secret'), patient }
      else throw new UsageError(`expected --key FILE or --profile se|bare, got ${profile === undefined ? 'neither' : `--profile '${profile}'`}`)
    }
    const dev = await withBackend(p, (b) => b.register(body))
    print(io, JSON.stringify(dev))
    return 0
  },
}

const revoke: Command = {
  name: 'revoke',
  summary: 'Revoke a device: it is refused from now on and disconnected',
  usage: `Usage: mhealth device revoke ID [target]

${TARGET}

With --url the gateway disconnects the device at once; with --data a running gateway
notices within half a second and disconnects it.`,
  async run(argv, io) {
    const p = parseCli(argv, targetOpts, { min: 1, max: 1, names: ['ID'] })
    const r = await withBackend(p, (b) => b.revoke(p.positionals[0]!))
    print(io, JSON.stringify(r))
    return 0
  },
}

/** The device a lifecycle command acts on: `--device ID` or the one positional ID. */
function deviceArg(p: Parsed): string {
  const opt = stringOpt(p, 'device')
  const pos = p.positionals[0]
  if (opt && pos && opt !== pos) throw new UsageError(`two devices given: --device ${opt} and ${pos}`)
  const id = opt ?? pos
  if (!id) throw new UsageError('expected the device: --device ID')
  return id
}

const deviceOpts = { ...targetOpts, device: { type: 'string' } } as const

const LIVE = `With --url a connected board follows at once; with --data a running gateway notices
within half a second (the registry is SQLite in WAL mode: the CLI may write it beside the
gateway, which holds the data directory's ledger lock, not the registry).
Each change is kept in the registry's device history (mhealth device history ID).`

const move: Command = {
  name: 'move',
  summary: "Assign a device to another patient (a connected board's next frames go to that patient)",
  usage: `Usage: mhealth device move --device ID --patient P [target]

${TARGET}

The board keeps its key and ID. Its next frames are published on patient P's feed and
shown only to clinicians P consented to; frames already stored stay in the ledger as
they were (a frame records its device, not a patient). A deleted device cannot be moved.
${LIVE}`,
  async run(argv, io) {
    const p = parseCli(argv, { ...deviceOpts, patient: { type: 'string' } }, { min: 0, max: 1, names: ['ID'] })
    const id = deviceArg(p)
    const patient = requireOpt(p, 'patient')
    print(io, JSON.stringify(await withBackend(p, (b) => b.move(id, patient))))
    return 0
  },
}

const reactivate: Command = {
  name: 'reactivate',
  summary: 'Let a revoked device connect again',
  usage: `Usage: mhealth device reactivate --device ID [target]

${TARGET}

The device keeps its key, patient and auth counter (an old token stays a replay).
A deleted device cannot be reactivated.
${LIVE}`,
  async run(argv, io) {
    const p = parseCli(argv, deviceOpts, { min: 0, max: 1, names: ['ID'] })
    const id = deviceArg(p)
    print(io, JSON.stringify(await withBackend(p, (b) => b.reactivate(id))))
    return 0
  },
}

const del: Command = {
  name: 'delete',
  summary: 'Retire a device for good (its frames stay in the ledger and still verify)',
  usage: `Usage: mhealth device delete --device ID [target]

${TARGET}

The device is refused from now on (and disconnected) and cannot be reactivated. Its
registry row stays as a tombstone with its public key (or HMAC secret): 'mhealth device
show ID' still gives the public key its ledger frames verify with, and its ID can never
be registered again with another key (that would let new frames pass as the old board's).
${LIVE}`,
  async run(argv, io) {
    const p = parseCli(argv, deviceOpts, { min: 0, max: 1, names: ['ID'] })
    const id = deviceArg(p)
    print(io, JSON.stringify(await withBackend(p, (b) => b.delete(id))))
    return 0
  },
}

const history: Command = {
  name: 'history',
  summary: "A device's lifecycle changes (registered, revoked, moved, reactivated, deleted)",
  usage: `Usage: mhealth device history ID [--data DIR]

Reads DIR/registry.sqlite (default ./data), read-only beside a running gateway.
One JSON line per change, oldest first: {device, atMs, action, detail}.`,
  async run(argv, io) {
    const p = parseCli(argv, deviceOpts, { min: 0, max: 1, names: ['ID'] })
    const id = deviceArg(p)
    const file = join(stringOpt(p, 'data') ?? './data', 'registry.sqlite')
    if (!existsSync(file)) throw new CliError(`no registry at ${file} (wrong --data?)`)
    const { DeviceRegistry } = await import('../../gateway/registry.ts')
    const reg = new DeviceRegistry(file)
    try {
      if (!reg.getDevice(id)) throw new CliError(`device ${id} is not registered`)
      for (const e of reg.deviceEvents(id)) print(io, JSON.stringify(e))
    } finally {
      reg.close()
    }
    return 0
  },
}

const list: Command = {
  name: 'list',
  summary: 'List registered devices',
  usage: `Usage: mhealth device list [--json] [target]\n\n${TARGET}`,
  async run(argv, io) {
    const p = parseCli(argv, targetOpts)
    const devs = await withBackend(p, (b) => b.list())
    if (p.values.json) print(io, JSON.stringify(devs, null, 2))
    else {
      print(io, ['id'.padEnd(17), 'profile', 'status ', 'patient'.padEnd(20), 'lastSeq', 'lastSeen'].join('  '))
      for (const d of devs)
        print(io, [String(d.id).padEnd(17), String(d.profile).padEnd(7), String(d.status).padEnd(7), String(d.patient).padEnd(20), String(d.lastSeq ?? '-').padEnd(7), d.lastSeenMs ? new Date(d.lastSeenMs as number).toISOString() : '-'].join('  '))
    }
    return 0
  },
}

const show: Command = {
  name: 'show',
  summary: 'Show one device as JSON (public key, patient, status, first/last seen, last seq)',
  usage: `Usage: mhealth device show ID [target]\n\n${TARGET}`,
  async run(argv, io) {
    const p = parseCli(argv, targetOpts, { min: 1, max: 1, names: ['ID'] })
    print(io, JSON.stringify(await withBackend(p, (b) => b.show(p.positionals[0]!)), null, 2))
    return 0
  },
}

export const command: Command = group('device', 'Manage the gateway device registry (locally or over the admin API)', [register, revoke, move, reactivate, del, list, show, history])
