/**
 * Espruino's "execution interrupted" state, as the board models it.
 *
 * When Espruino cannot allocate a JsVar it prints `ERROR: Out of Memory!` (src/jsvar.c,
 * jsvNewWithFlags: once, until the error flags are read) and sets the interrupted flag
 * (jspSetInterrupted); the parser then executes nothing more, and the idle loop reports
 * `Execution Interrupted during event processing.` (src/jsinteractive.c, jsiCheckErrors). It
 * is not a JavaScript exception: no `catch` sees it and no `finally` runs.
 *
 * The board throws OUT_OF_MEMORY (a host-realm object the firmware never holds) with the
 * flag below set; the rewritten `catch`/`finally` blocks (load-rewrite.ts) read the flag
 * through the context global `__intr` and let it through; the dispatcher clears the flag once
 * the callback has unwound. One flag serves every board of the process: callbacks of all
 * boards run one at a time on this thread, and each is unwound before the next starts.
 */

/** The sentinel thrown through the firmware's stack. */
export class OutOfMemoryInterrupt extends Error {
  constructor() {
    super('Out of Memory!')
    this.name = 'OutOfMemoryInterrupt'
  }
}

export const OUT_OF_MEMORY = new OutOfMemoryInterrupt()

/** Set while an interrupt unwinds the current callback. */
export const interruptFlag = { on: false }

/** Interrupts the running firmware code (never returns). */
export function interruptForMemory(): never {
  interruptFlag.on = true
  throw OUT_OF_MEMORY
}

/** Whether `e` (thrown out of firmware code) is the interrupt, or the interrupt was swallowed on the way. */
export function wasInterrupted(e?: unknown): boolean {
  return e === OUT_OF_MEMORY || interruptFlag.on
}
