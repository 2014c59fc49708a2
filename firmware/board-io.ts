/**
 * What every firmware entry (main.ts, legacy-ad8232.ts) needs of the board itself: its
 * millisecond clock, the console log, the native SHA-256 as a HashProvider, pins by name,
 * and the two REPL answers `mhealth flash` and `provision` read (a Storage file's SHA-256,
 * the SE's public key). Bundled for Espruino.
 */
import type { Atecc608 } from './drivers/atecc608.ts'
import { DEFAULTS } from './config.ts'
import type { HashProvider } from '../protocol/portable/hash.ts'
import { toHex } from '../protocol/portable/bytes.ts'

const crypto = require('crypto')

/** The ESP32's native SHA-256 (require("crypto") returns an ArrayBuffer). */
export const hash: HashProvider = {
  sha256: function (d: Uint8Array): Uint8Array {
    return new Uint8Array(crypto.SHA256(d))
  },
}

export function boardMs(): number {
  return getTime() * 1000
}

export function log(m: string): void {
  print('[mh] ' + m)
}

// Pin objects by name: a literal table, because looking pins up on `global` by name is
// not something every Espruino build supports.
const PINS: { [n: string]: Pin } = {
  D2: D2, D4: D4, D5: D5, D12: D12, D13: D13, D14: D14, D15: D15, D16: D16, D17: D17, D18: D18, D19: D19,
  D21: D21, D22: D22, D23: D23, D25: D25, D26: D26, D27: D27, D32: D32, D33: D33, D34: D34, D35: D35,
  D36: D36, D39: D39,
}

export function pin(name: string | undefined, dflt: string): Pin {
  const p = PINS[name || dflt]
  if (!p) throw new Error('unknown pin ' + name)
  return p
}

/** REPL (mhHash): SHA-256 of a Storage file, hex, or 'missing'; `mhealth flash` verifies uploads with it. */
export function storageSha256(name: string): string {
  const s = require('Storage').read(name)
  if (s === undefined) return 'missing'
  return toHex(new Uint8Array(crypto.SHA256(s)))
}

/** REPL (mhPubKey): personalises the SE if blank and prints its public key (65 bytes, hex) for provisioning. */
export function printPublicKey(se: Atecc608): void {
  se.personalize(DEFAULTS.slot, function (err, pub) {
    if (err || !pub) return print('PUBKEY-ERROR ' + err)
    print('PUBKEY 04' + toHex(pub))
  })
}
