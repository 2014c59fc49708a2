/**
 * Today's firmware, frozen: the bundle `buildBundle()` made from firmware/ at commit 1c6b420
 * (2026-12-07 firmware, issue 24's "current firmware"): ECG from the AD8232 by `analogRead` on
 * a 250 Hz timer, one JavaScript callback per sample; the MAX30102 polled every 100 ms on a
 * 100 kHz I2C bus; frames built, signed (ATECC608 or HMAC) and sent in callbacks of their own.
 *
 * Kept as built so that the per-sample pipeline can still be measured after the firmware is
 * rewritten (bench/firmware.ts prints it side by side with the new one; the cost tests show it
 * losing samples at the central setting). It is a build product, not a source: do not edit it;
 * to refreeze, build the bundle of the commit wanted and update the figures below.
 */
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'

export const PER_SAMPLE_FIRMWARE = {
  path: fileURLToPath(new URL('./baseline/firmware-per-sample.js', import.meta.url)),
  commit: '1c6b4209da6f52c2d770eb0806cf8da6a313446d',
  bytes: 37_014,
  sha256: '40e3354cf6a4457e0cf51acd1ce727045e9ae3cbedb9ea5ded7644d20e16eadb',
  description: 'AD8232 by analogRead on a 250 Hz timer (JavaScript per sample), MAX30102 polled every 100 ms at 100 kHz',
} as const

let cached: string | null = null

/** The frozen per-sample bundle, checked against its recorded hash. */
export function perSampleBundle(): string {
  if (cached !== null) return cached
  const code = readFileSync(PER_SAMPLE_FIRMWARE.path, 'latin1')
  const sha = createHash('sha256').update(code, 'latin1').digest('hex')
  if (sha !== PER_SAMPLE_FIRMWARE.sha256) throw new Error(`${PER_SAMPLE_FIRMWARE.path}: expected sha256 ${PER_SAMPLE_FIRMWARE.sha256}, got ${sha} (the frozen bundle was changed)`)
  cached = code
  return code
}
