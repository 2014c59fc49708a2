/**
 * COSE signing of payloads (frames and auth tokens), two profiles:
 * - SE: SHA-256 of the Sig_structure (native crypto), signed by the ATECC608 (Nonce
 *   pass-through + Sign external) asynchronously, so sampling timers keep running;
 * - bare: HMAC-SHA256 over the MAC_structure with the provisioned secret.
 */
import { sign1ToBeSigned, mac0ToBeMaced, buildSign1, buildMac0 } from '../protocol/portable/cose.ts'
import { hmacSha256, type HashProvider } from '../protocol/portable/hash.ts'
import type { Atecc608 } from './drivers/atecc608.ts'

export type SignDone = (err: string | null, cose: Uint8Array | null) => void

export interface Signer {
  profile: string
  sign(payload: Uint8Array, cb: SignDone): void
  stats: { count: number; errors: number; busyMs: number }
}

export function seSigner(h: HashProvider, se: Atecc608, slot: number, kid: string, now: () => number): Signer {
  const s: Signer = {
    profile: 'se',
    stats: { count: 0, errors: 0, busyMs: 0 },
    sign: function (payload, cb) {
      const t = now()
      const digest = h.sha256(sign1ToBeSigned(kid, payload))
      s.stats.busyMs += now() - t
      se.signDigest(slot, digest, function (err, sig) {
        if (err || !sig) {
          s.stats.errors++
          return cb('secure element: ' + err, null)
        }
        const t2 = now()
        const out = buildSign1(kid, payload, sig)
        s.stats.busyMs += now() - t2
        s.stats.count++
        cb(null, out)
      })
    },
  }
  return s
}

export function bareSigner(h: HashProvider, key: Uint8Array, kid: string, now: () => number): Signer {
  const s: Signer = {
    profile: 'bare',
    stats: { count: 0, errors: 0, busyMs: 0 },
    sign: function (payload, cb) {
      // In a callback of its own, after the frame was built: a sampler tick that fell due
      // meanwhile runs in between (Espruino runs due timers in time order), and callers
      // see one asynchronous shape for both profiles. The payload view stays valid: the
      // framer reuses its buffer only for the next window, a second away.
      setTimeout(function () {
        const t = now()
        const out = buildMac0(kid, payload, hmacSha256(h, key, mac0ToBeMaced(kid, payload)))
        s.stats.busyMs += now() - t
        s.stats.count++
        cb(null, out)
      }, 0)
    },
  }
  return s
}
