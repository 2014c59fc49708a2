/**
 * The one sort the signal library needs: a handful of values (a median of 8 peak heights, 32
 * RR intervals, a window's beats), sorted without allocating, on the board as on Node.
 * Portable (Espruino subset).
 */

/** A typed array or plain array of numbers, written by index. */
export interface NumberSlots {
  [i: number]: number
}

/**
 * Insertion-sorts the first `n` values of `src` into `dst` (ascending). `dst` may be `src`
 * (sorted in place): each value is read before any write reaches its slot.
 */
export function sortFirst(src: NumberSlots, n: number, dst: NumberSlots): void {
  for (let i = 0; i < n; i++) {
    const v = src[i]
    let j = i - 1
    while (j >= 0 && dst[j] > v) {
      dst[j + 1] = dst[j]
      j--
    }
    dst[j + 1] = v
  }
}
