/**
 * Seeded pseudo-random numbers for deterministic signal sources and faults: synthetic
 * frames (synthetic.ts), the simulator's signal and device models, test vectors. Lives in
 * protocol so all of those can share it without importing upward. Node only (Math.imul).
 * Not for keys or nonces (those come from node:crypto).
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Standard normal (Box–Muller). */
  gaussian(): number
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number
}

/** mulberry32: 32-bit state, full period, fast; good enough for simulation. */
export function createRng(seed: number): Rng {
  let s = seed >>> 0
  let spare: number | null = null
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    gaussian() {
      if (spare !== null) {
        const v = spare
        spare = null
        return v
      }
      let u = 0
      while (u === 0) u = next()
      const v = next()
      const r = Math.sqrt(-2 * Math.log(u))
      spare = r * Math.sin(2 * Math.PI * v)
      return r * Math.cos(2 * Math.PI * v)
    },
    int(lo, hi) {
      return lo + Math.floor(next() * (hi - lo + 1))
    },
  }
}

/** Derives independent child seeds (one per device, per source) from one fleet seed. */
export function childSeed(seed: number, ...path: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0
  for (const p of path) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0
    h = (h ^ (h >>> 13)) >>> 0
    h = Math.imul(h, 0xc2b2ae35) >>> 0
    h = (h ^ (h >>> 16)) >>> 0
  }
  return h
}
