/**
 * Worker thread side of the verification pool: decode + verify the batches sent by
 * verify-pool.ts (format in verify-wire.ts), answer with the facts or the rejections.
 * The reply's number array is transferred, not copied.
 */
import { parentPort } from 'node:worker_threads'
import { runBatch, type VerifyBatch } from './verify-wire.ts'

const port = parentPort!
port.on('message', (batch: VerifyBatch) => {
  const reply = runBatch(batch)
  port.postMessage(reply, [reply.facts.buffer as ArrayBuffer])
})
