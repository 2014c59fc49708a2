/**
 * COSE for payloads (frames and auth tokens), two profiles, with every constant byte
 * precomputed once per identity and no per-byte JavaScript per payload:
 * - SE: SHA-256 of the Sig_structure (native crypto), signed by the ATECC608 (Nonce
 *   pass-through + Sign external), asynchronously: the driver waits out the part's execution
 *   time with setTimeout, so the sampler's timers keep running;
 * - bare: HMAC-SHA256 over the MAC_structure with the provisioned secret.
 *
 * The byte layouts (RFC 9052; protocol/portable/cose.ts builds the same bytes generically):
 *   Sig_structure = 84 6A "Signature1" bstr(protected) 40 bstr(payload)
 *   MAC_structure = 84 64 "MAC0"       bstr(protected) 40 bstr(payload)
 *   COSE_Sign1    = D2 84 bstr(protected) A0 bstr(payload) 58 40 signature
 *   COSE_Mac0     = D1 84 bstr(protected) A0 bstr(payload) 58 20 tag
 * protected = {1: alg, 4: kid}. Everything before bstr(payload) is constant per identity.
 *
 * HMAC (RFC 2104) = H(K^opad || H(K^ipad || m)). Espruino's native PBKDF2 computes HMAC only of
 * messages ending in 00 00 00 01 (a MAC_structure does not), so the two hashes are native
 * SHA-256 calls over preallocated buffers: K^ipad (64 bytes, once) || the MAC_structure
 * (`set`), then K^opad (once) || the inner digest. Two hashes, no loop over the message.
 */
import { cbor, CborOut } from './cbor-out.ts'
import type { HashProvider } from '../protocol/portable/hash.ts'
import type { Atecc608 } from './drivers/atecc608.ts'

/** `cose` is a view of the signer's buffer, valid until its next completion: use it at once. */
export type SignDone = (err: string | null, cose: Uint8Array | null) => void

export interface Signer {
  profile: string
  /** Bare: calls back before returning. SE: calls back later (the part takes ~120 ms). */
  sign(payload: Uint8Array, cb: SignDone): void
  stats: { count: number; errors: number; busyMs: number }
}

/** The constant parts of one identity's COSE structures. */
export interface CoseConstants {
  /** 84 6A/64 "Signature1"/"MAC0" bstr(protected) 40 */
  toBeSigned: Uint8Array
  /** D2/D1 84 bstr(protected) A0 */
  head: Uint8Array
  /** 58 40 / 58 20: the signature's or tag's bstr head. */
  tailHead: Uint8Array
}

/** COSE algorithm IDs (RFC 9053): ES256 signs (SE profile), HMAC 256/256 MACs (bare profile). */
export const ALG_ES256 = -7
export const ALG_HMAC256 = 5

export function coseConstants(alg: number, kid: string): CoseConstants {
  const sign = alg === ALG_ES256
  // protected = {1: alg, 4: kid as bytes}, as protocol/portable/cose.ts protectedHeader.
  const prot = cbor(function (w) { w.h(5, 2).h(0, 1).int(alg).h(0, 4).str(2, kid) })
  return {
    toBeSigned: cbor(function (w) { w.h(4, 4).str(3, sign ? 'Signature1' : 'MAC0').bytes(prot).h(2, 0) }),
    // COSE_Sign1 is tag 18, COSE_Mac0 tag 17.
    head: cbor(function (w) { w.h(6, sign ? 18 : 17).h(4, 4).bytes(prot).h(5, 0) }),
    tailHead: new Uint8Array([0x58, sign ? 64 : 32]),
  }
}

/**
 * The MQTT CONNECT password's payload, CBOR ["mh-auth", deviceId, iatMs, counter]
 * (protocol/portable/auth-token.ts), signed like a frame. The marker and ID are written once:
 * a token is made on every reconnect, and a board that cannot reach its gateway retries often.
 * The returned bytes are a view, valid until the next call.
 */
export function authPayloads(deviceId: string): (iatMs: number, counter: number) => Uint8Array {
  const head = cbor(function (w) { w.h(4, 4).str(3, 'mh-auth').str(3, deviceId) })
  const w = new CborOut(head.length + 18).put(head)
  return function (iatMs, counter) {
    w.p = head.length
    return w.h(0, iatMs).h(0, counter).b.subarray(0, w.p)
  }
}

/** Payload bytes the buffers are made for at first: a 2 s frame at the default rates (about 1,450). */
const ROOM = 2048

/** Writes the shortest CBOR byte-string head for n bytes at `at`; returns its length. */
export function bstrHead(buf: Uint8Array, at: number, n: number): number {
  if (n < 24) {
    buf[at] = 0x40 | n
    return 1
  }
  if (n < 256) {
    buf[at] = 0x58
    buf[at + 1] = n
    return 2
  }
  buf[at] = 0x59
  buf[at + 1] = n >> 8
  buf[at + 2] = n & 255
  return 3
}

/**
 * Preallocated buffers that grow only when a payload is longer than any before: a prefix
 * written once, then per payload a bstr head and the payload by `set`.
 */
class Staging {
  buf: Uint8Array
  fixed: number
  prefix: Uint8Array
  constructor(prefix: Uint8Array, room: number) {
    this.prefix = prefix
    this.fixed = prefix.length
    this.buf = new Uint8Array(prefix.length + room)
    this.buf.set(prefix, 0)
  }
  /** prefix || bstr(payload) || `tail` bytes of room; returns the length before the tail. */
  fill(payload: Uint8Array, tail: number): number {
    const need = this.fixed + 3 + payload.length + tail
    if (need > this.buf.length) {
      this.buf = new Uint8Array(need + 256)
      this.buf.set(this.prefix, 0)
    }
    const h = bstrHead(this.buf, this.fixed, payload.length)
    this.buf.set(payload, this.fixed + h)
    return this.fixed + h + payload.length
  }
}

export function seSigner(h: HashProvider, se: Atecc608, slot: number, kid: string, now: () => number): Signer {
  const k = coseConstants(ALG_ES256, kid)
  const tbs = new Staging(k.toBeSigned, ROOM)
  const out = new Staging(k.head, ROOM + 66)
  const s: Signer = {
    profile: 'se',
    stats: { count: 0, errors: 0, busyMs: 0 },
    sign: function (payload, cb) {
      const t = now()
      const n = tbs.fill(payload, 0) // first: fill may move to a larger buffer
      const digest = h.sha256(tbs.buf.subarray(0, n))
      s.stats.busyMs += now() - t
      se.signDigest(slot, digest, function (err, sig) {
        if (err || !sig || sig.length !== 64) {
          s.stats.errors++
          return cb('secure element: ' + (err || 'no signature'), null)
        }
        const t2 = now()
        const n = out.fill(payload, 66)
        out.buf.set(k.tailHead, n)
        out.buf.set(sig, n + 2)
        s.stats.busyMs += now() - t2
        s.stats.count++
        cb(null, out.buf.subarray(0, n + 66))
      })
    },
  }
  return s
}

export function bareSigner(h: HashProvider, key: Uint8Array, kid: string, now: () => number): Signer {
  if (key.length !== 32) throw new Error('bare: secret of ' + key.length + ' bytes, not 32')
  const k = coseConstants(ALG_HMAC256, kid)
  // K^ipad before the MAC_structure's constant start, K^opad before the inner digest: computed
  // once (RFC 2104: the key padded with zeros to the 64-byte block).
  const pre = new Uint8Array(64 + k.toBeSigned.length)
  const outer = new Uint8Array(96)
  for (let i = 0; i < 64; i++) {
    const kb = i < 32 ? key[i] : 0
    pre[i] = kb ^ 0x36
    outer[i] = kb ^ 0x5c
  }
  pre.set(k.toBeSigned, 64)
  const inner = new Staging(pre, ROOM)
  const out = new Staging(k.head, ROOM + 34)
  const s: Signer = {
    profile: 'bare',
    stats: { count: 0, errors: 0, busyMs: 0 },
    sign: function (payload, cb) {
      const t = now()
      const m = inner.fill(payload, 0) // first: fill may move to a larger buffer
      outer.set(h.sha256(inner.buf.subarray(0, m)), 64)
      const tag = h.sha256(outer)
      const n = out.fill(payload, 34)
      out.buf.set(k.tailHead, n)
      out.buf.set(tag, n + 2)
      s.stats.busyMs += now() - t
      s.stats.count++
      cb(null, out.buf.subarray(0, n + 34))
    },
  }
  return s
}
