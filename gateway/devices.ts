/**
 * Device registration input, shared by `mhealth device register` (direct on the
 * data dir) and the HTTP admin API: validates shapes and binds the ID to the key.
 * SE profile: the ID must be the one derived from the public key (a board cannot
 * claim another's ID). Bare profile: the ID is assigned at provisioning and must
 * have a valid check character.
 */
import type { DeviceRegistry, Device, Profile } from './registry.ts'
import { RegistryError } from './registry.ts'
import { fromHex } from '../protocol/portable/bytes.ts'

export interface RegistrationCodec {
  isValidDeviceId(id: string): boolean
  idFromPublicKey(pub65: Uint8Array): string
}

export interface RegistrationInput {
  id?: unknown
  profile?: unknown
  publicKey?: unknown
  secret?: unknown
  patient?: unknown
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})+$/

function hexField(v: unknown, name: string, bytes: number): Uint8Array {
  if (typeof v !== 'string' || !HEX_RE.test(v) || v.length !== bytes * 2)
    throw new RegistryError(`${name}: expected ${bytes} bytes as hex (${bytes * 2} characters), got ${typeof v === 'string' ? v.length + ' characters' : typeof v}`, 'invalid')
  return fromHex(v)
}

export function registerDevice(reg: DeviceRegistry, codec: RegistrationCodec, input: RegistrationInput): Device {
  const profile = input.profile as Profile
  if (profile !== 'se' && profile !== 'bare') throw new RegistryError(`profile: expected 'se' or 'bare', got ${JSON.stringify(input.profile)}`, 'invalid')
  if (typeof input.patient !== 'string') throw new RegistryError(`patient: expected a patient ID string, got ${typeof input.patient}`, 'invalid')
  if (profile === 'se') {
    const publicKey = hexField(input.publicKey, 'publicKey', 65)
    if (publicKey[0] !== 4) throw new RegistryError('publicKey: expected an uncompressed P-256 point (starting 04)', 'invalid')
    const derived = codec.idFromPublicKey(publicKey)
    if (input.id !== undefined && input.id !== derived) throw new RegistryError(`id: ${String(input.id)} is not the ID of this public key (${derived})`, 'invalid')
    return reg.register({ id: derived, profile, publicKey, patient: input.patient })
  }
  if (typeof input.id !== 'string' || !codec.isValidDeviceId(input.id)) throw new RegistryError(`id: expected a device ID (17 base32 characters with check), got ${JSON.stringify(input.id)}`, 'invalid')
  const secret = hexField(input.secret, 'secret', 32)
  return reg.register({ id: input.id, profile, secret, patient: input.patient })
}

/** Registration input from a key file's JSON (`mhealth keygen` format); private parts are ignored. */
export function inputFromKeyJson(k: Record<string, unknown>, patient: string): RegistrationInput {
  if (k.type === 'p256') return { id: k.id, profile: 'se', publicKey: k.publicKey, patient }
  if (k.type === 'hmac') return { id: k.id, profile: 'bare', secret: k.secret, patient }
  throw new RegistryError(`key file: expected type p256 or hmac, got ${JSON.stringify(k.type)}`, 'invalid')
}
