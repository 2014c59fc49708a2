/**
 * What a firmware bundle may cost (issue budgets), checked by `mhealth firmware build`.
 * Kept apart from bundle.ts so the CLI can print them without loading esbuild or acorn.
 */

/** JsVars an ESP32 build of Espruino has for code and data together (14 bytes each). */
export const ESP32_VARS = 16383

/** Bundle bytes. */
export const BUNDLE_BUDGET = 48 * 1024

/** Steady-state JsVars: 60 % of the ESP32's, the rest is headroom for buffers and TLS. */
export const VARS_BUDGET = Math.floor(ESP32_VARS * 0.6)
