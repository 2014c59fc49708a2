import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { UsageError, CliError } from './errors.ts'
import { fromHex } from '../protocol/portable/bytes.ts'
import type { DeviceKey } from '../protocol/node/verify.ts'
import type { KeyMaterial } from '../protocol/node/keys.ts'

/**
 * A device key given on the command line: a key file, or hex. 65 bytes of hex
 * is a P-256 public key (SE profile); 32 bytes is a bare-profile HMAC secret.
 * `id` is the device the key belongs to, when the key says (a key file, a public key);
 * a bare secret given as hex does not.
 */
export async function deviceKeyArg(arg: string): Promise<{ key: DeviceKey; id: string | null }> {
  if (existsSync(arg)) {
    const { readKeyFile, KeyFileError } = await import('../protocol/node/keyfile.ts')
    let k: KeyMaterial
    try {
      k = readKeyFile(arg)
    } catch (err) {
      if (err instanceof KeyFileError) throw new CliError(err.message)
      throw err
    }
    if (k.type === 'p256') return { key: { profile: 'se', publicKey: k.publicKey }, id: k.id }
    if (k.type === 'hmac') return { key: { profile: 'bare', secret: k.secret }, id: k.id }
    throw new CliError(`${arg} is an ${k.type} key; frames are verified with a device's P-256 key or HMAC secret`)
  }
  let b: Uint8Array
  try {
    b = fromHex(arg)
  } catch {
    throw new UsageError(`--key must be a key file or hex, got '${arg.slice(0, 40)}' (no such file, not hex)`)
  }
  if (b.length === 65 && b[0] === 4) {
    const { deviceIdFromPublicKey } = await import('../protocol/portable/device-id.ts')
    const { nodeHash } = await import('../protocol/node/hash-node.ts')
    return { key: { profile: 'se', publicKey: b }, id: deviceIdFromPublicKey(nodeHash, b) }
  }
  if (b.length === 32) return { key: { profile: 'bare', secret: b }, id: null }
  throw new UsageError(`--key hex must be a 65-byte P-256 public key (04…) or a 32-byte HMAC secret, got ${b.length} bytes`)
}

const HEX32 = /^[0-9a-fA-F]{64}$/

/**
 * An Ed25519 key pair from a key file (`mhealth keygen --type ed25519`: JSON with hex
 * privateKey and publicKey): a patient's key, the ledger producer's, a witness's.
 * `what` names the option in messages (e.g. '--key').
 */
export async function readEd25519KeyPair(path: string, what: string): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
  let j
  try {
    j = JSON.parse(await readFile(path, 'utf8'))
  } catch (e) {
    throw new UsageError(`${what}: cannot read key file ${path}: ${(e as Error).message}`)
  }
  if (j?.type !== 'ed25519' || !HEX32.test(j?.privateKey ?? '') || !HEX32.test(j?.publicKey ?? '')) throw new UsageError(`${what}: ${path} is not an ed25519 key file with hex privateKey and publicKey`)
  return { privateKey: fromHex(j.privateKey), publicKey: fromHex(j.publicKey) }
}
