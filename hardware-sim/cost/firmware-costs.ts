/**
 * Checks the cost model against what the facts file measured for the firmware on the real
 * interpreter: the firmware bundle, instrumented, streams on a virtual rig (offline, frames
 * into the flash ring) while a small harness in the board counts the units of every timer
 * callback, and a clock that advances with the unit counter lets the firmware's own
 * `stats.frameMs` (the frame build, timed with boardMs() around Framer.encodeWindow, as on
 * the board) report units instead of virtual ms.
 *
 *   npx tsx hardware-sim/cost/firmware-costs.ts [--seconds 10] [--call-units N]
 *
 * prints units per ECG tick, per frame build and per sign callback next to the facts file's
 * figures (x86 -Og build: ~72 µs per tick = 18 ms / 250, ~800 µs per frame build, up to
 * 2.1 ms per MAC/sign callback) and the ESP32 time at each setting.
 */
import { instrument } from './instrument.ts'
import { CALIBRATION, CostModel, usPerUnitFor, type Setting } from './model.ts'

/** What one kind of timer callback cost, in units. */
export interface CallbackUnits {
  count: number
  sum: number
  max: number
}

export interface FirmwareCosts {
  profile: 'se' | 'bare'
  seconds: number
  /** Units by callback, keyed by the method the callback calls (`tick`, `onWindow`, `pollPpg`...) or its first characters. */
  callbacks: Record<string, CallbackUnits>
  /** Units per ECG tick callback (`function(){self.tick()}`), its code only (add CALIBRATION.callbackUnits for dispatch): mean and max; null when the firmware has no such timer. */
  tick: { mean: number; max: number } | null
  /** Units per frame build: the region the firmware times as stats.frameMs, divided by frames. */
  frameBuild: number
  /** Units per sign callback (bare profile: the deferred HMAC + COSE build), mean and max; null in the SE profile. */
  sign: { mean: number; max: number } | null
  frames: number
  ticks: number
}

/** One unit advances the harness clock by this many seconds: small enough not to disturb sampling. */
const SECONDS_PER_UNIT = 1e-9

/**
 * Runs in the board before the firmware (not instrumented, so it costs nothing itself):
 * wraps setTimeout/setInterval to account each callback's units, and makes getTime() move
 * with the unit counter so the firmware's boardMs() deltas measure units.
 */
const HARNESS = `var __cost={u:0,cb:{}};
(function(){
  var gt=getTime, st=setTimeout, si=setInterval;
  getTime=function(){return gt()+__cost.u*${SECONDS_PER_UNIT};};
  function label(f){var s=String(f);s=s.replace(/(var __cost\\$c=__cost;)?__cost(\\$c)?\\.u\\+=[\\d.]+;/g,"");var m=/^function\\s*\\(\\)\\s*\\{\\s*[\\w$]+\\.([\\w$]+)\\(/.exec(s);return m?m[1]:s.slice(0,48);}
  function wrap(f){
    if(typeof f!=="function")return f;
    var k=label(f);
    return function(){
      var u0=__cost.u;
      try{return f.apply(this,arguments);}
      finally{var d=__cost.u-u0;var r=__cost.cb[k]||(__cost.cb[k]={count:0,sum:0,max:0});r.count++;r.sum+=d;if(d>r.max)r.max=d;}
    };
  }
  setTimeout=function(f){var a=[].slice.call(arguments);a[0]=wrap(f);return st.apply(this,a);};
  setInterval=function(f){var a=[].slice.call(arguments);a[0]=wrap(f);return si.apply(this,a);};
})();
`

/** The firmware bundle of this checkout, instrumented with `callUnits`, behind the harness. */
export async function instrumentedFirmware(callUnits: number = CALIBRATION.callUnits, skipWeight: number = CALIBRATION.skipWeight): Promise<string> {
  const { buildBundle } = await import('../../firmware/build/bundle.ts')
  const { code } = await buildBundle()
  return HARNESS + instrument(code, { callUnits, skipWeight }).code
}

/**
 * Streams the instrumented firmware offline for `seconds` virtual seconds (after a 3 s
 * warm-up that starts the sampler and fills the first windows) and reads the counts.
 */
export async function measureFirmwareCosts(o: {
  profile: 'se' | 'bare'
  seconds?: number
  callUnits?: number
  bundle?: string
  /** Called at the end with the board's REPL (e.g. to read a profiling bundle's site counts). */
  inspect?: (repl: (code: string) => unknown) => void
}): Promise<FirmwareCosts> {
  const seconds = o.seconds ?? 10
  const bundle = o.bundle ?? (await instrumentedFirmware(o.callUnits))
  const { createBoardRig } = await import('../rig.ts')
  const { nodeHash } = await import('../../protocol/node/hash-node.ts')
  const { deviceIdFromPublicKey, deviceIdFromBytes } = await import('../../protocol/portable/device-id.ts')
  const rig = await createBoardRig({ id: 'cost', bundle, se: o.profile === 'se', battery: false, gcPump: false, seed: 5 })
  try {
    const { board } = rig
    const gw = { host: '127.0.0.1', mqttPort: 1, httpPort: 1 }
    if (o.profile === 'se') {
      const id = deviceIdFromPublicKey(nodeHash, rig.readPublicKey())
      rig.configure({ id, profile: 'se', slot: 0, t: Date.now(), gw })
    } else {
      const id = deviceIdFromBytes(nodeHash, new Uint8Array(10).fill(7))
      rig.configure({ id, profile: 'bare', secret: '11'.repeat(32), t: Date.now(), gw })
    }
    // advance() runs in one synchronous job, so V8 frees nothing meanwhile and the board's
    // JsVar estimate keeps counting garbage (an out-of-memory no board would have, in 30 s with
    // the SE driver's buffers): a collection between virtual seconds, as the rigs' pump does.
    const advance = async (ms: number): Promise<void> => {
      for (let left = ms; left > 0; left -= 1000) {
        board.advance(Math.min(1000, left))
        await board.collect()
      }
    }
    board.boot()
    await advance(3000)
    const read = (): { cb: Record<string, CallbackUnits>; st: ReturnType<typeof rig.status> } => {
      const r = board.repl('JSON.stringify(__cost.cb)')
      if (!r.ok) throw new Error(`the harness did not run: ${String(r.value)} | ${rig.lines.slice(-3).join(' | ')}`)
      return { cb: JSON.parse(String(r.value)), st: rig.status() }
    }
    const a = read()
    // Longest runs of the measured seconds only (the warm-up's first frame and flush are dearer).
    board.repl('for (var k in __cost.cb) __cost.cb[k].max = 0')
    await advance(seconds * 1000)
    const b = read()
    if (!a.st?.up || !b.st?.up) throw new Error(`the firmware is not streaming: ${rig.lines.slice(-5).join(' | ')}`)
    const callbacks: Record<string, CallbackUnits> = {}
    for (const [k, v] of Object.entries(b.cb)) {
      const p = a.cb[k] ?? { count: 0, sum: 0, max: 0 }
      if (v.count > p.count) callbacks[k] = { count: v.count - p.count, sum: v.sum - p.sum, max: v.max }
    }
    o.inspect?.((code) => board.repl(code).value)
    const tick = callbacks.tick
    const frames = b.st.stats.frames - a.st.stats.frames
    if (!(frames > 0)) throw new Error('no frame was built during the measurement')
    const frameUnits = ((b.st.stats.frameMs - a.st.stats.frameMs) / 1000 / SECONDS_PER_UNIT) / frames
    const signKey = Object.keys(callbacks).find((k) => /buildMac0|PBKDF2|hmac/i.test(k) || /^function\(\)\{(let|var|const) \w+=\w+\(\)/.test(k))
    const sign = o.profile === 'bare' && signKey ? { mean: callbacks[signKey]!.sum / callbacks[signKey]!.count, max: callbacks[signKey]!.max } : null
    return {
      profile: o.profile, seconds, callbacks,
      tick: tick ? { mean: tick.sum / tick.count, max: tick.max } : null,
      frameBuild: frameUnits, sign, frames, ticks: tick ? tick.count : 0,
    }
  } finally {
    rig.close()
  }
}

/** The facts file's figures on the -Og x86 build (µs). */
export const X86_FIGURES = { tickUs: 18_000 / 250, frameBuildUs: 800, signUsMax: 2_100, perSecondUs: [17_000, 25_000] as const }

/** µs per unit on the -Og x86 build, from the calibration loop. */
export const X86_US_PER_UNIT = CALIBRATION.loop.x86Us / CALIBRATION.loop.units

async function main(): Promise<void> {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(name)
    return i > 0 ? Number(process.argv[i + 1]) : undefined
  }
  const seconds = arg('--seconds') ?? 10
  const dispatch = arg('--callback-units') ?? CALIBRATION.callbackUnits
  const callUnits = arg('--call-units') ?? CALIBRATION.callUnits
  const skipWeight = arg('--skip-weight') ?? CALIBRATION.skipWeight
  const bundle = await instrumentedFirmware(callUnits, skipWeight)
  const fmt = (n: number, d = 0): string => n.toFixed(d)
  console.log(`callUnits ${callUnits}, callbackUnits ${dispatch}, skipWeight ${skipWeight}, x86 µs/unit ${X86_US_PER_UNIT.toPrecision(4)}`)
  console.log(`| profile | what | units | x86 model µs | x86 measured µs | ${(['low', 'central', 'high'] as Setting[]).map((s) => `ESP32 ${s} µs`).join(' | ')} |`)
  console.log('|---|---|---:|---:|---:|---:|---:|---:|')
  const profiles = process.argv.includes('--bare') ? (['bare'] as const) : (['bare', 'se'] as const)
  for (const profile of profiles) {
    const r = await measureFirmwareCosts({ profile, seconds, bundle })
    const row = (what: string, units: number, measured: string): void => {
      const esp = (['low', 'central', 'high'] as Setting[]).map((s) => fmt(new CostModel(s).unitsUs(units)))
      console.log(`| ${profile} | ${what} | ${fmt(units)} | ${fmt(units * X86_US_PER_UNIT)} | ${measured} | ${esp.join(' | ')} |`)
    }
    if (r.tick) row('ECG tick callback (mean, dispatch included)', r.tick.mean + dispatch, fmt(X86_FIGURES.tickUs))
    row('frame build (region in onWindow)', r.frameBuild, fmt(X86_FIGURES.frameBuildUs))
    if (r.sign) row('sign callback (max, dispatch included)', r.sign.max + dispatch, `<= ${X86_FIGURES.signUsMax}`)
    const perSec = Object.values(r.callbacks).reduce((s, c) => s + c.sum + c.count * dispatch, 0) / r.seconds
    row('all timer callbacks per board-second', perSec, `${X86_FIGURES.perSecondUs[0]}-${X86_FIGURES.perSecondUs[1]}`)
    if (r.tick) console.log(`| ${profile} | tick / frame build | ${((r.tick.mean + dispatch) / r.frameBuild).toFixed(3)} | | ${(X86_FIGURES.tickUs / X86_FIGURES.frameBuildUs).toFixed(3)} | | | |`)
    if (process.argv.includes('--callbacks')) for (const [k, v] of Object.entries(r.callbacks)) console.log(`    ${JSON.stringify(k)} n=${v.count} mean=${fmt(v.sum / v.count)} max=${fmt(v.max)}`)
  }
  console.log(`central µs/unit ${usPerUnitFor('central').toFixed(4)}`)
}

if (process.argv[1] && import.meta.url === new URL(process.argv[1], 'file://').href) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
