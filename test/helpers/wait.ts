/**
 * Waiting in tests: for a condition to become true (`waitFor`), for an event (`nextEvent`),
 * or, the one legitimate fixed delay, for a window in which something must NOT happen
 * (`expectQuiet`). A timeout names what did not happen, so a failure on a loaded CI machine
 * says which step stalled instead of a bare tap timeout. MHEALTH_WAIT_DEBUG=1 (or RIG_DEBUG,
 * as the board rig tests have it) logs each wait as it starts.
 */
import type { EventEmitter } from 'node:events'

/** Text for a timeout; a function is called only then (e.g. to report the state at that moment). */
export type What = string | (() => string)

const describe = (what: What): string => (typeof what === 'function' ? what() : what)
const debug = (): boolean => !!(process.env.MHEALTH_WAIT_DEBUG || process.env.RIG_DEBUG)

/**
 * Polls `pred` (sync or async) every `everyMs` until it holds; rejects with
 * "timed out after N ms waiting for <what>" after `timeoutMs` of real time.
 */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: What, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  if (debug()) console.error(`[${new Date().toISOString()}] waiting: ${describe(what)}`)
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(what)}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/**
 * Resolves with the first `event`'s arguments; rejects naming `what` after `timeoutMs`.
 * Any emitter with once/off (typed ones like mqtt.js' client included).
 */
export function nextEvent<T extends unknown[] = unknown[]>(source: { once: unknown; off: unknown }, event: string, what: What, timeoutMs = 10_000): Promise<T> {
  const emitter = source as EventEmitter
  return new Promise((resolve, reject) => {
    const on = (...args: unknown[]) => {
      clearTimeout(timer)
      resolve(args as T)
    }
    const timer = setTimeout(() => {
      emitter.off(event, on)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe(what)}`))
    }, timeoutMs)
    emitter.once(event, on)
  })
}

/**
 * Lets `ms` of real time pass during which `what` must not happen; the caller asserts
 * afterwards that it did not. Absence cannot be awaited, so this is the one fixed delay a
 * test may hold: a loaded machine can only make such a check pass when it should fail (the
 * unwanted message arriving after the window), never fail when it should pass.
 */
export function expectQuiet(ms: number, what: string): Promise<void> {
  if (debug()) console.error(`[${new Date().toISOString()}] quiet for ${ms} ms: ${what}`)
  return new Promise((r) => setTimeout(r, ms))
}
