/**
 * What a firmware bundle costs in JsVars on a virtual ESP32: the figure `mhealth firmware
 * build` checks against its budget (firmware/build/budget.ts holds the budgets) and the
 * firmware bench prints.
 */
import { createBoardRig } from './rig.ts'
import { FirmwareBuildError } from '../firmware/build/bundle.ts'
import { nodeHash } from '../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey } from '../protocol/portable/device-id.ts'

export interface MemoryEstimate {
  /** JsVars in use after the code loaded from flash, before it runs anything. */
  loaded: number
  /** JsVars in use while streaming (offline, frames into the flash ring), buffers allocated. */
  steady: number
  /** Highest reading within a second of streaming, garbage not yet freed included (upper bound). */
  peak: number
  total: number
}

/**
 * Loads the bundle from Storage (.bootcde, as after `mhealth flash`) on a virtual ESP32 wired
 * like a real board (rig.ts: ATECC608, MAX30102, AD8232, battery), SE profile,
 * gateway unreachable so frames go to the flash ring; runs 10 virtual seconds so every
 * buffer, the ring and the MQTT client exist, collects garbage (Espruino frees at once, V8
 * later) and reads the JsVar usage. Throws FirmwareBuildError when the firmware does not stream.
 */
export async function estimateMemory(code: string): Promise<MemoryEstimate> {
  const rig = await createBoardRig({ id: 'memcheck', bundle: code, gcPump: false, battery: false })
  try {
    const { board } = rig
    await board.collect()
    const loaded = board.memory().usage
    const id = deviceIdFromPublicKey(nodeHash, rig.readPublicKey())
    rig.configure({ id, profile: 'se', slot: 0, t: Date.now(), gw: { host: '127.0.0.1', mqttPort: 1, httpPort: 1 } })
    board.boot()
    let peak = 0
    for (let i = 0; i < 10; i++) {
      board.advance(1000)
      // Before collecting: live data plus this second's garbage, an upper bound.
      peak = Math.max(peak, board.memory().usage)
      await board.collect()
    }
    const s = rig.status()
    if (!s || !s.up || !(s.stats.frames >= 8)) throw new FirmwareBuildError(`the firmware did not stream on the virtual board: ${rig.lines.slice(-5).join(' | ')}`)
    return { loaded, steady: board.memory().usage, peak, total: board.memory().total }
  } finally {
    rig.close()
  }
}
