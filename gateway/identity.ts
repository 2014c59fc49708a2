/**
 * First-start state in the data directory, created once and reused:
 *   gateway.key   Ed25519 key (ledger producer key), key-file JSON, mode 0600
 *   admin.token   bearer token for the HTTP admin API, mode 0600
 *   tls/cert.pem, tls/key.pem   self-signed certificate when none is configured
 * Files are written to a temp name, fsynced and renamed, so a power cut during
 * first start leaves either nothing or a whole file.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { join } from 'node:path'

export function writeFileDurable(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

export interface GatewayIdentity {
  keyFile: string
  /** Principal ID of the gateway's Ed25519 key (the ledger producer ID). */
  id: string
  publicKeyHex: string
  adminToken: string
  created: { key: boolean; token: boolean }
}

const b64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url')

/** Loads or creates the gateway key and admin token. `idOf` derives the principal ID from the raw public key. */
export function ensureIdentity(dataDir: string, idOf: (pub32: Uint8Array) => string): GatewayIdentity {
  mkdirSync(dataDir, { recursive: true })
  const keyFile = join(dataDir, 'gateway.key')
  const tokenFile = join(dataDir, 'admin.token')
  const created = { key: false, token: false }
  if (!existsSync(keyFile)) {
    const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })
    const pub = b64u(jwk.x)
    const key = { type: 'ed25519', id: idOf(pub), publicKey: pub.toString('hex'), privateKey: b64u(jwk.d).toString('hex') }
    writeFileDurable(keyFile, JSON.stringify(key) + '\n')
    created.key = true
  }
  const key = JSON.parse(readFileSync(keyFile, 'utf8')) as { type: string; id: string; publicKey: string }
  if (key.type !== 'ed25519') throw new Error(`${keyFile}: expected an ed25519 key, got ${key.type}`)
  if (!existsSync(tokenFile)) {
    writeFileDurable(tokenFile, randomBytes(32).toString('base64url') + '\n')
    created.token = true
  }
  const adminToken = readFileSync(tokenFile, 'utf8').trim()
  return { keyFile, id: key.id, publicKeyHex: key.publicKey, adminToken, created }
}

export interface TlsMaterial {
  cert: string
  key: string
  /** SHA-256 fingerprint of the DER certificate, colon-separated hex (what devices pin). */
  fingerprint256: string
  created: boolean
}

/** Configured PEM files, or a self-signed ECDSA P-256 certificate made on first start. */
export async function ensureTls(dataDir: string, certFile?: string, keyFile?: string): Promise<TlsMaterial> {
  let created = false
  if (!certFile || !keyFile) {
    const dir = join(dataDir, 'tls')
    certFile = join(dir, 'cert.pem')
    keyFile = join(dir, 'key.pem')
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      mkdirSync(dir, { recursive: true })
      const { generate } = await import('selfsigned')
      const notAfter = new Date()
      notAfter.setFullYear(notAfter.getFullYear() + 10) // a clinic box is not re-provisioned yearly; devices pin the fingerprint
      const pems = await generate([{ name: 'commonName', value: 'mhealth-gateway' }], {
        keyType: 'ec',
        curve: 'P-256',
        algorithm: 'sha256',
        notAfterDate: notAfter,
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
      } as never)
      writeFileDurable(keyFile, pems.private)
      writeFileDurable(certFile, pems.cert, 0o644)
      created = true
    }
  }
  const cert = readFileSync(certFile, 'utf8')
  const key = readFileSync(keyFile, 'utf8')
  const fingerprint256 = new X509Certificate(cert).fingerprint256
  return { cert, key, fingerprint256, created }
}

export const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex')
