/**
 * A patient's stored frames in a t0 range, read from the ledger a page at a time
 * (FramePages). First the locators of every device's leaves in the range: no frame is
 * read, and the event loop is handed back between ledger pages, so even a day of a
 * patient's frames is listed in slices of a millisecond or so. Then each page's frames
 * are read only when the export asks for it, and not at all once it stops.
 *
 * Order: by t0, then leaf index, as DashboardDeps.frames has it (the gateway's vitals
 * see each device's signal in that order).
 */
import type { Ledger } from '../ledger/ledger.ts'
import type { FramePages } from './deps.ts'

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r))

export interface LedgerPagesOptions {
  /** Called before each page is read: throws to stop the export (consent revoked meanwhile). */
  check?: () => void
  /** Leaves a ledger page looks at (default 512). */
  scan?: number
}

/** One device's frames with t0 in [fromMs, toMs): a patient's board, over the time it was theirs. */
export interface PageSource {
  deviceId: string
  fromMs: number
  toMs: number
}

type Ref = { leafIndex: number; t0: number }
const before = (a: Ref, b: Ref): boolean => a.t0 < b.t0 || (a.t0 === b.t0 && a.leafIndex < b.leafIndex)

export async function ledgerFramePages(ledger: Ledger, sources: readonly PageSource[], o: LedgerPagesOptions = {}): Promise<FramePages> {
  const lists: Ref[][] = []
  for (const { deviceId, fromMs, toMs } of sources) {
    const refs: Ref[] = []
    for (let cursor = 0; cursor >= 0; ) {
      const page = ledger.frameLeaves({ deviceId, from: fromMs, to: toMs, cursor, scan: o.scan })
      for (const r of page.leaves) refs.push(r)
      cursor = page.next
      if (cursor >= 0) await yieldToLoop()
    }
    // A board sends oldest first, so its leaves are in t0 order but for a resent backlog: sort only then.
    if (refs.some((r, i) => i > 0 && before(r, refs[i - 1]))) refs.sort((a, b) => a.t0 - b.t0 || a.leafIndex - b.leafIndex)
    if (refs.length > 0) lists.push(refs)
    await yieldToLoop()
  }
  // The devices' lists merged as the pages are asked for (a patient has a board or two).
  const heads = lists.map(() => 0)
  const first = (): number => {
    let k = -1
    for (let i = 0; i < lists.length; i++) if (heads[i] < lists[i].length && (k < 0 || before(lists[i][heads[i]], lists[k][heads[k]]))) k = i
    return k
  }
  let closed = false
  return {
    async next(max) {
      let k = first()
      if (closed || k < 0) return null
      o.check?.()
      const take: Ref[] = []
      while (k >= 0 && (take.length < Math.max(1, max) || lists[k][heads[k]].t0 === take[take.length - 1].t0)) {
        take.push(lists[k][heads[k]++])
        k = first()
      }
      // Together: each read first waits for the ledger's pending appends to be durable, so a
      // page waits for one group commit at most, not one per frame.
      const got = await Promise.all(take.map((r) => ledger.frameAt(r.leafIndex)))
      return closed ? [] : got.flatMap((f) => (f.bytes ? [f.bytes] : [])) // null: retention pruned it since the listing
    },
    close() {
      closed = true
      lists.length = 0
    },
  }
}
