/** The full and the gateway's lean decoder judged side by side (they must agree on every input). */
import type { Test } from 'tap'
import { decodeFrame, decodeFrameLean } from '../../../protocol/node/decode.ts'


/** "ok <payload fields but the sample lanes>" or "<code>: <message>" for a decode attempt. */
export function decodeVerdict(fn: () => { payload: object }): string {
  try {
    const { ecg, red, ir, ecgFast, ...rest } = fn().payload as Record<string, unknown>
    void ecg, red, ir, ecgFast
    return 'ok ' + JSON.stringify(rest)
  } catch (err) {
    return `${(err as { code?: string }).code ?? 'THROWN ' + (err as Error).name}: ${(err as Error).message}`
  }
}

/** Decodes with both; fails the test if they disagree; returns the full decoder's verdict. */
export function fullAndLean(t: Test, bytes: Uint8Array, label: string): string {
  const full = decodeVerdict(() => decodeFrame(bytes))
  const lean = decodeVerdict(() => decodeFrameLean(bytes))
  if (full !== lean) t.equal(lean, full, `lean = full: ${label}`)
  return full
}
