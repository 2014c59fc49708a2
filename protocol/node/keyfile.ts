/** Key files: JSON, mode 0600, format in docs/contributing.md. */
import { writeFileSync, readFileSync, mkdirSync, existsSync, chmodSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { toHex, fromHex } from '../portable/bytes.ts'
import type { KeyMaterial } from './keys.ts'
import { deviceIdFromPublicKey, isValidDeviceId } from '../portable/device-id.ts'
import { nodeHash } from './hash-node.ts'
import { principalIdFromEd25519 } from './keys.ts'

export class KeyFileError extends Error {
  override name = 'KeyFileError'
}

export function keyToJson(k: KeyMaterial): Record<string, string> {
  if (k.type === 'hmac') return { type: k.type, id: k.id, secret: toHex(k.secret) }
  return { type: k.type, id: k.id, publicKey: toHex(k.publicKey), privateKey: toHex(k.privateKey) }
}

/** Public part only, as `mhealth keygen` prints it. */
export function publicInfo(k: KeyMaterial): { id: string; type: string; publicKey: string | null } {
  return { id: k.id, type: k.type, publicKey: k.type === 'hmac' ? null : toHex(k.publicKey) }
}

/** Writes DIR/<id>.key.json with mode 0600; refuses to overwrite. Returns the path. */
export function writeKeyFile(dir: string, k: KeyMaterial): string {
  makeDirs(dir)
  const path = join(dir, `${k.id}.key.json`)
  if (existsSync(path)) throw new KeyFileError(`${path} already exists; refusing to overwrite a key`)
  writeFileSync(path, JSON.stringify(keyToJson(k), null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return path
}

/**
 * mkdir -p, one level at a time. Node's own `mkdirSync(dir, { recursive: true })` loops forever
 * at 100 % CPU when mkdir says ENOENT under a parent that exists (`--out /proc/nope`).
 */
function makeDirs(dir: string): void {
  const missing: string[] = []
  for (let d = resolve(dir); !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.unshift(d)
  for (const d of missing) {
    try {
      mkdirSync(d)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST' && existsSync(d)) continue
      throw new KeyFileError(`cannot create directory ${d}: ${code ?? (err as Error).message}`)
    }
  }
  if (!statSync(dir).isDirectory()) throw new KeyFileError(`${dir} is not a directory`)
}

function hexField(o: Record<string, unknown>, name: string, len: number, path: string): Uint8Array {
  const v = o[name]
  if (typeof v !== 'string') throw new KeyFileError(`${path}: missing "${name}"`)
  let b: Uint8Array
  try {
    b = fromHex(v)
  } catch {
    throw new KeyFileError(`${path}: "${name}" is not hex`)
  }
  if (b.length !== len) throw new KeyFileError(`${path}: "${name}" must be ${len} bytes, got ${b.length}`)
  return b
}

export function keyFromJson(o: unknown, path = 'key'): KeyMaterial {
  if (!o || typeof o !== 'object') throw new KeyFileError(`${path}: expected a JSON object`)
  const r = o as Record<string, unknown>
  const id = r.id
  if (typeof id !== 'string' || !isValidDeviceId(nodeHash, id)) throw new KeyFileError(`${path}: "id" is missing or not a valid ID`)
  if (r.type === 'hmac') return { type: 'hmac', id, secret: hexField(r, 'secret', 32, path) }
  if (r.type === 'p256') {
    const publicKey = hexField(r, 'publicKey', 65, path)
    if (deviceIdFromPublicKey(nodeHash, publicKey) !== id) throw new KeyFileError(`${path}: "id" does not match the public key`)
    return { type: 'p256', id, publicKey, privateKey: hexField(r, 'privateKey', 32, path) }
  }
  if (r.type === 'ed25519') {
    const publicKey = hexField(r, 'publicKey', 32, path)
    if (principalIdFromEd25519(publicKey) !== id) throw new KeyFileError(`${path}: "id" does not match the public key`)
    return { type: 'ed25519', id, publicKey, privateKey: hexField(r, 'privateKey', 32, path) }
  }
  throw new KeyFileError(`${path}: "type" must be ed25519, p256 or hmac, got ${JSON.stringify(r.type)}`)
}

export function readKeyFile(path: string): KeyMaterial {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new KeyFileError(`cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch {
    throw new KeyFileError(`${path}: not valid JSON`)
  }
  return keyFromJson(o, path)
}
