/**
 * The shape of each beat, for beat classification: a short ring of the raw
 * signal, and at every detected beat its QRS window compared with the shapes
 * seen so far on this patient (a few running-average templates, the one most
 * beats match being the patient's dominant beat). Nothing is learned across
 * patients here; what a template holds is this patient's own recent beats,
 * which is how bedside monitors learn a dominant beat. Portable (Espruino
 * subset): typed arrays allocated once, no allocation per sample or beat.
 */

/** Templates kept; a new shape replaces the one matched least recently when all are taken. */
const TEMPLATES = 4
/** A beat joins a template at this correlation or more (and a similar amplitude). */
const JOIN_CORR = 0.9
/** Per-beat decay of the templates' member counts: the dominant shape changes after several hundred beats of another (a long VT run must not make its shape the normal one). */
const DECAY = 0.999

export interface BeatShape {
  /** Correlation (-1..1) with the dominant template, at the best lag within ±12 ms. */
  corr: number
  /** Peak-to-peak amplitude over the dominant template's (1 = same size). */
  ampRatio: number
  /** Width over the dominant template's width. */
  widthRatio: number
  /** QRS width estimate in seconds (samples beyond 30 % of the excursion). */
  width: number
  /** Largest slope over peak-to-peak amplitude, per second (a wide, slow complex scores low). */
  sharpness: number
  /** Sharpness over the dominant template's. */
  sharpRatio: number
  /** Share of the recent beats that joined the template this beat joined (0 when it started a new one). */
  share: number
  /** True when the beat joined the dominant template. */
  dominant: boolean
  /** True when the beat matched no template and started one (in noise most do). */
  novel: boolean
}

export class BeatShapes {
  readonly fs: number
  private ring: Float32Array
  private rm: number
  private n = 0
  /** Window before and after R, samples. */
  private pre: number
  private post: number
  private len: number
  private lag: number
  private win: Float32Array
  private tpl: Float32Array[]
  private tplCount: Float64Array
  private tplUsed: Int32Array
  private tplAmp: Float64Array
  private tplWidth: Float64Array
  private tplSharp: Float64Array
  private beats = 0

  constructor(fs: number) {
    this.fs = fs
    let size = 1
    while (size < fs * 4) size *= 2
    this.ring = new Float32Array(size)
    this.rm = size - 1
    this.pre = Math.round(0.1 * fs)
    this.post = Math.round(0.15 * fs)
    this.len = this.pre + this.post + 1
    this.lag = Math.max(1, Math.round(0.012 * fs))
    this.win = new Float32Array(this.len + 2 * this.lag)
    this.tpl = []
    for (let i = 0; i < TEMPLATES; i++) this.tpl.push(new Float32Array(this.len))
    this.tplCount = new Float64Array(TEMPLATES)
    this.tplUsed = new Int32Array(TEMPLATES)
    this.tplAmp = new Float64Array(TEMPLATES)
    this.tplWidth = new Float64Array(TEMPLATES)
    this.tplSharp = new Float64Array(TEMPLATES)
  }

  push(x: number): void {
    this.ring[this.n & this.rm] = x
    this.n++
  }

  /** Samples pushed so far (the index the next sample gets). */
  get count(): number {
    return this.n
  }

  reset(): void {
    this.n = 0
    this.beats = 0
    for (let i = 0; i < TEMPLATES; i++) {
      this.tplCount[i] = 0
      this.tplUsed[i] = 0
    }
  }

  /**
   * The shape of the beat at sample `r` (an index of this ring's stream), written into `out`;
   * false when the window is no longer (or not yet) in the ring.
   */
  measure(r: number, out: BeatShape): boolean {
    const lag = this.lag
    const from = r - this.pre - lag
    const to = r + this.post + lag
    if (from < 0 || to >= this.n || this.n - from > this.ring.length) return false
    const w = this.win
    const ring = this.ring
    const rm = this.rm
    const wl = w.length
    // remove the straight line through the window's ends (baseline wander under the beat)
    const a = (ring[from & rm] + ring[(from + 1) & rm]) / 2
    const b = (ring[to & rm] + ring[(to - 1) & rm]) / 2
    for (let i = 0; i < wl; i++) w[i] = ring[(from + i) & rm] - (a + ((b - a) * i) / (wl - 1))
    // amplitude, width and sharpness over the central window
    let lo = Infinity
    let hi = -Infinity
    let slope = 0
    for (let i = lag; i < lag + this.len; i++) {
      const v = w[i]
      if (v < lo) lo = v
      if (v > hi) hi = v
      const d = i > lag ? Math.abs(v - w[i - 1]) : 0
      if (d > slope) slope = d
    }
    const pp = hi - lo
    const big = Math.abs(hi) > Math.abs(lo) ? Math.abs(hi) : Math.abs(lo)
    let first = -1
    let last = -1
    for (let i = lag; i < lag + this.len; i++) {
      if (Math.abs(w[i]) > 0.3 * big) {
        if (first < 0) first = i
        last = i
      }
    }
    const width = first < 0 ? 0 : (last - first + 1) / this.fs
    const sharp = pp > 0 ? (slope * this.fs) / pp : 0
    // best template at the best lag
    let best = -1
    let bestC = -2
    let bestLag = 0
    for (let k = 0; k < TEMPLATES; k++) {
      if (this.tplCount[k] <= 0) continue
      const t = this.tpl[k]
      for (let l = -lag; l <= lag; l++) {
        const c = corr(w, lag + l, t, this.len)
        if (c > bestC) {
          bestC = c
          best = k
          bestLag = l
        }
      }
    }
    const dom = this.dominant()
    this.beats++
    let joined = -1
    if (best >= 0 && bestC >= JOIN_CORR && pp > 0.6 * this.tplAmp[best] && pp < 1.6 * this.tplAmp[best]) joined = best
    // the dominant template's figures, against which this beat is described
    let domC = bestC
    if (dom >= 0 && dom !== best) {
      domC = -2
      for (let l = -lag; l <= lag; l++) {
        const c = corr(w, lag + l, this.tpl[dom], this.len)
        if (c > domC) domC = c
      }
    }
    out.corr = dom >= 0 ? domC : 1
    out.ampRatio = dom >= 0 && this.tplAmp[dom] > 0 ? pp / this.tplAmp[dom] : 1
    out.widthRatio = dom >= 0 && this.tplWidth[dom] > 0 ? width / this.tplWidth[dom] : 1
    out.sharpRatio = dom >= 0 && this.tplSharp[dom] > 0 ? sharp / this.tplSharp[dom] : 1
    out.width = width
    out.sharpness = sharp
    out.dominant = dom < 0 || joined === dom
    // learn: join (running average, faster while the template is young) or start a template
    out.novel = joined < 0
    if (joined < 0) {
      joined = this.freeSlot()
      const t = this.tpl[joined]
      for (let i = 0; i < this.len; i++) t[i] = w[lag + i]
      this.tplCount[joined] = 1
      this.tplAmp[joined] = pp
      this.tplWidth[joined] = width
      this.tplSharp[joined] = sharp
      bestLag = 0
    } else {
      const t = this.tpl[joined]
      const c = this.tplCount[joined]
      const g = c < 8 ? 1 / (c + 1) : 1 / 8
      const off = lag + bestLag
      for (let i = 0; i < this.len; i++) t[i] += g * (w[off + i] - t[i])
      this.tplCount[joined] = c + 1
      this.tplAmp[joined] += g * (pp - this.tplAmp[joined])
      this.tplWidth[joined] += g * (width - this.tplWidth[joined])
      this.tplSharp[joined] += g * (sharp - this.tplSharp[joined])
    }
    this.tplUsed[joined] = this.beats
    // counts decay so the dominant shape follows a change of the patient's rhythm within minutes
    for (let k = 0; k < TEMPLATES; k++) this.tplCount[k] *= DECAY
    let total = 0
    for (let k = 0; k < TEMPLATES; k++) total += this.tplCount[k]
    out.share = total > 0 && joined === best ? this.tplCount[joined] / total : 0
    return true
  }

  /** The template with the most (decayed) members, or -1. */
  private dominant(): number {
    let d = -1
    for (let k = 0; k < TEMPLATES; k++) if (this.tplCount[k] > 0 && (d < 0 || this.tplCount[k] > this.tplCount[d])) d = k
    return d
  }

  private freeSlot(): number {
    let s = 0
    for (let k = 0; k < TEMPLATES; k++) {
      if (this.tplCount[k] <= 0) return k
      if (this.tplUsed[k] < this.tplUsed[s]) s = k
    }
    // never evict the dominant template for a one-off shape
    if (s === this.dominant()) {
      let alt = -1
      for (let k = 0; k < TEMPLATES; k++) if (k !== s && (alt < 0 || this.tplUsed[k] < this.tplUsed[alt])) alt = k
      if (alt >= 0) s = alt
    }
    return s
  }
}

/** Pearson correlation of x[off .. off+n) with t[0 .. n). */
function corr(x: Float32Array, off: number, t: Float32Array, n: number): number {
  let sx = 0
  let st = 0
  for (let i = 0; i < n; i++) {
    sx += x[off + i]
    st += t[i]
  }
  const mx = sx / n
  const mt = st / n
  let xy = 0
  let xx = 0
  let tt = 0
  for (let i = 0; i < n; i++) {
    const a = x[off + i] - mx
    const b = t[i] - mt
    xy += a * b
    xx += a * a
    tt += b * b
  }
  return xx > 0 && tt > 0 ? xy / Math.sqrt(xx * tt) : 0
}
