/** Errors the board's modules share (host side: the firmware never sees these classes). */

/** A board-level failure the host caused or must see (bundle refused, out of memory at load). */
export class BoardError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BoardError'
  }
}

/** Sentinel: execution of the current callback must stop and the board reboot (E.reboot()). */
export class Interrupt extends Error {}
