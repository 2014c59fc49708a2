/** The Espruino syntax gate lives with the firmware build (firmware/build/syntax-gate.ts); this path is kept for existing imports. */
export * from '../../firmware/build/syntax-gate.ts'
