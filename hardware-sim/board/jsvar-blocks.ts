/**
 * Espruino's JsVar block sizes on the ESP32 layout (src/jsvar.h): how many 14-byte blocks a
 * name, a string or a flat string takes. The arithmetic both the memory model (memory.ts)
 * and the load-time rewrite (load-rewrite.ts) price things with.
 */
export const ESP32_JSVARS = 16_383
export const JSVAR_BYTES = 14
/** Vars the interpreter itself holds at an empty prompt (root, pins, built-in objects created on use). */
export const BASE_VARS = 220

/** Characters in the first block of a name (JSVAR_DATA_STRING_NAME_LEN). */
export const NAME_CHARS = 4
/** Characters in the first block of a string value (JSVAR_DATA_STRING_LEN). */
const STRING_CHARS = 9
/** Characters in each extension block (JSVAR_DATA_STRING_MAX_LEN). */
const EXT_CHARS = 10
/** Longer strings allocated in one go are flat (JSV_FLAT_STRING_BREAK_EVEN). */
const FLAT_BREAK_EVEN = STRING_CHARS + EXT_CHARS
/** Integers that fit in a name block (JSVARREF_MIN..JSVARREF_MAX for 14-bit refs). */
export const INLINE_MIN = -8192
export const INLINE_MAX = 8191

/** A string value of `len` characters. */
export function stringVars(len: number): number {
  return 1 + Math.ceil(Math.max(0, len - STRING_CHARS) / EXT_CHARS)
}

/** A name (property key, variable, parameter) of `len` characters. */
export function nameVars(len: number): number {
  return 1 + Math.ceil(Math.max(0, len - NAME_CHARS) / EXT_CHARS)
}

/** A string Espruino allocates whole (flat when over 19 characters). */
export function flatVars(len: number): number {
  return len > FLAT_BREAK_EVEN ? 1 + Math.ceil(len / JSVAR_BYTES) : stringVars(len)
}
