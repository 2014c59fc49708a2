/**
 * The message format between verify-pool.ts and its workers, and the worker's
 * work on one batch (a pure function, so tests can run it without a thread).
 *
 * Wire between the threads (both directions transfer their ArrayBuffers, so
 * nothing is structured-cloned byte by byte and no per-frame object crosses):
 *  request: `bytes` holds every frame and key of the batch back to back; `meta`
 *           holds REQ_FIELDS int32 per frame; `kids` the expected kid of each.
 *  reply:   `facts` holds REP_FIELDS float64 per frame (id, ok, seq, boot, t0,
 *           flags); `errors` the (index, code, message) of the refused ones.
 * On success kid and payload deviceId both equal the expected kid (the decoder
 * checks deviceId = kid, checkFrameSync checks kid = expected), so they are not sent.
 */
import { checkFrameSync } from './protocol-codec.ts'
import { Rejection, type DeviceKey } from './frame-check.ts'

/** Per frame: id, frame offset, frame length, key offset, key length (-1: none), profile (0 se, 1 bare). */
export const REQ_FIELDS = 6
/** Per frame: id, ok (1/0), seq, boot, t0, flags. */
export const REP_FIELDS = 6

export interface VerifyBatch {
  bytes: Uint8Array
  meta: Int32Array
  kids: string[]
}

export interface VerifyReplyBatch {
  facts: Float64Array
  errors: Array<{ i: number; code: string; message: string }>
}

export function runBatch(b: VerifyBatch): VerifyReplyBatch {
  const n = b.kids.length
  const facts = new Float64Array(n * REP_FIELDS)
  const errors: VerifyReplyBatch['errors'] = []
  for (let i = 0; i < n; i++) {
    const m = i * REQ_FIELDS
    const frame = b.bytes.subarray(b.meta[m + 1]!, b.meta[m + 1]! + b.meta[m + 2]!)
    // key length -1: the registry has no key of that kind (protocolKey refuses it as before)
    const raw = b.meta[m + 4]! < 0 ? null : b.bytes.subarray(b.meta[m + 3]!, b.meta[m + 3]! + b.meta[m + 4]!)
    const key: DeviceKey = b.meta[m + 5] === 0 ? { profile: 'se', publicKey: raw, secret: null } : { profile: 'bare', publicKey: null, secret: raw }
    const kid = b.kids[i]!
    const o = i * REP_FIELDS
    facts[o] = b.meta[m]!
    try {
      const f = checkFrameSync(frame, key, kid)
      if (f.kid !== kid || f.deviceId !== kid) throw new Rejection('kid-mismatch', `frame kid ${f.kid} / deviceId ${f.deviceId} is not the client ID ${kid}`)
      facts[o + 1] = 1
      facts[o + 2] = f.seq
      facts[o + 3] = f.boot
      facts[o + 4] = f.t0
      facts[o + 5] = f.flags
    } catch (err) {
      errors.push({ i, code: err instanceof Rejection ? err.code : 'internal', message: (err as Error).message })
    }
  }
  return { facts, errors }
}
