/**
 * Worker thread side of the verification pool: decode + verify frames sent by
 * verify-pool.ts, answer with the facts or the rejection code and message.
 */
import { parentPort } from 'node:worker_threads'
import { checkFrameSync } from './protocol-codec.ts'
import { Rejection, type DeviceKey } from './frame-check.ts'

export interface VerifyRequest {
  id: number
  frame: Uint8Array
  key: DeviceKey
  expectKid: string
}

export type VerifyReply =
  | { id: number; ok: true; facts: ReturnType<typeof checkFrameSync> }
  | { id: number; ok: false; code: string; message: string }

parentPort!.on('message', (batch: VerifyRequest[]) => {
  const out: VerifyReply[] = []
  for (const r of batch) {
    try {
      out.push({ id: r.id, ok: true, facts: checkFrameSync(r.frame, r.key, r.expectKid) })
    } catch (err) {
      const code = err instanceof Rejection ? err.code : 'internal'
      out.push({ id: r.id, ok: false, code, message: (err as Error).message })
    }
  }
  parentPort!.postMessage(out)
})
