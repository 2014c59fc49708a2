/**
 * What a firmware bundle may cost (issue budgets), checked by `mhealth firmware build`.
 * Kept apart from bundle.ts so the CLI can print them without loading esbuild or acorn.
 *
 * The JsVar figures the build prints come from the virtual board (hardware-sim/bundle-memory.ts),
 * whose model is calibrated on the real interpreter: for the bundle of 2026-12-07 it reports
 * 2,421 JsVars loaded from Storage (Espruino 2v29 measured 2,260), 4,788 sent to RAM (4,618) and
 * about 4,500 while streaming (4,200-4,260): within 15 %, never under (docs/hardware-sim-board.md).
 */

/** JsVars an ESP32 build of Espruino has for code and data together (14 bytes each). */
export const ESP32_VARS = 16383

/** Bundle bytes. */
export const BUNDLE_BUDGET = 48 * 1024

/**
 * Steady-state JsVars: 60 % of the ESP32's. The rest is headroom for what the steady figure does
 * not hold: per-frame garbage between callbacks, a reconnect's buffers, mbedtls if TLS is used.
 */
export const VARS_BUDGET = Math.floor(ESP32_VARS * 0.6)
