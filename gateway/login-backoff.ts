/**
 * Backoff on password guessing, per account AND per source address. The registry's
 * global login limit bounds how fast passwords are checked in all; this bounds how
 * fast one source may guess at one account: a few free attempts (typos), then a wait
 * that doubles with each further wrong password, up to `maxDelayMs`. An attempt made
 * while it must wait is refused without checking the password, so it learns nothing.
 *
 * Why keyed by source too: a lockout per account alone hands every stranger a switch
 * that locks a clinician out of the ward screen (guess wrong a few times, from
 * anywhere). Here the guesser only slows down itself; the clinician logging in from
 * her own workstation is never made to wait. The price: a guesser with many
 * addresses gets the free attempts once per address, which the global limit and the
 * 8-character password minimum then have to carry. IPv6 sources count per /64, the
 * block one host usually holds. Behind a reverse proxy every client shares the
 * proxy's address, and then this becomes a per-account lock: run the gateway's HTTP
 * listener on its own (forwarded-for headers are not trusted, as anyone can send one).
 *
 * Attempts are counted when they start, not when scrypt answers, so a burst of
 * parallel guesses cannot all slip in before the first failure is recorded.
 */
import { isIPv6 } from 'node:net'

export interface LoginBackoffOptions {
  /** Wrong passwords allowed before any wait (default 3). */
  freeFailures?: number
  /** The first wait, doubled for each further failure (default 1 s). */
  baseDelayMs?: number
  /** The longest wait (default 15 min). */
  maxDelayMs?: number
  /** A record is forgotten this long after its last attempt (default 1 h, and never before its wait ends). */
  forgetAfterMs?: number
  /** Most (account, source) records kept; past that the least recently used goes (default 10,000). */
  maxEntries?: number
  now?: () => number
}

/** A login refused before its password was checked: this source must wait. */
export class LoginThrottled extends Error {
  override name = 'LoginThrottled'
  constructor(readonly retryAfterMs: number) {
    super(`too many wrong passwords for this account from your address; try again in ${Math.ceil(retryAfterMs / 1000)} s`)
  }
}

/** How a claimed attempt ended: true (right password: forget the failures), false (wrong), null (not checked: does not count). */
export type SettleAttempt = (ok: boolean | null) => void

interface Entry {
  failures: number
  lastMs: number
}

export class LoginBackoff {
  private readonly entries = new Map<string, Entry>()
  private readonly free: number
  private readonly baseMs: number
  private readonly maxMs: number
  private readonly forgetMs: number
  private readonly maxEntries: number
  private readonly now: () => number

  constructor(o: LoginBackoffOptions = {}) {
    this.free = o.freeFailures ?? 3
    this.baseMs = o.baseDelayMs ?? 1_000
    this.maxMs = o.maxDelayMs ?? 15 * 60_000
    this.forgetMs = o.forgetAfterMs ?? 3600_000
    this.maxEntries = o.maxEntries ?? 10_000
    this.now = o.now ?? Date.now
  }

  /** The wait after `failures` wrong passwords: none for the free ones, then base, 2×base, 4×base … up to the maximum. */
  delayAfter(failures: number): number {
    return failures < this.free ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - this.free, 40))
  }

  /**
   * Claims one attempt at `account` from `source` (see `sourceOf`): throws LoginThrottled
   * while this pair must wait, else counts the attempt as a failure until it is settled.
   */
  begin(account: string, source: string): SettleAttempt {
    const key = `${source} ${account}`
    const t = this.now()
    let e = this.entries.get(key)
    if (e && t - e.lastMs >= Math.max(this.forgetMs, this.delayAfter(e.failures))) e = undefined
    const wait = e ? e.lastMs + this.delayAfter(e.failures) - t : 0
    if (wait > 0) throw new LoginThrottled(wait)
    const entry: Entry = { failures: (e?.failures ?? 0) + 1, lastMs: t }
    this.put(key, entry)
    let settled = false
    return (ok) => {
      if (settled) return
      settled = true
      if (ok === true) this.entries.delete(key)
      else if (this.entries.get(key) !== entry) return
      else if (ok === null) entry.failures--
      else entry.lastMs = this.now() // the wait runs from the wrong answer, however long scrypt took
    }
  }

  get size(): number {
    return this.entries.size
  }

  private put(key: string, e: Entry): void {
    this.entries.delete(key) // re-inserted last: Map order is then least recently used first
    this.entries.set(key, e)
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
  }
}

/** The source a login is counted against: the IPv4 address (also when IPv4-mapped), or the IPv6 /64. */
export function sourceOf(address: string | undefined): string {
  if (!address) return 'unknown'
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]
  if (!isIPv6(address)) return address
  const [head, tail] = address.toLowerCase().split('%')[0].split('::')
  const h = head ? head.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tail.split(':').length).fill('0'), ...tail.split(':')]
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64'
}
