/**
 * What a firmware bundle costs in JsVars on a virtual ESP32: the figure `mhealth firmware
 * build` checks against its budget (firmware/build/budget.ts holds the budgets) and the
 * firmware bench prints. The board's JsVar model (board/memory.ts) is calibrated against the
 * real interpreter on this project's bundle (docs/hardware-sim-board.md, "Memory budget").
 */
import { DEFAULTS } from '../firmware/config.ts'
import net from 'node:net'
import { createBoardRig } from './rig.ts'
import { FirmwareBuildError } from '../firmware/build/bundle.ts'
import { nodeHash } from '../protocol/node/hash-node.ts'
import { deviceIdFromPublicKey } from '../protocol/portable/device-id.ts'

export interface MemoryEstimate {
  /** JsVars in use after the code loaded from flash (`.bootcde`), before it runs anything (not provisioned). */
  loaded: number
  /** JsVars in use after the same code was sent to RAM instead (each function then keeps a copy of its code). */
  loadedFromRam: number
  /** JsVars in use while streaming (gateway silent, frames into the flash ring), buffers allocated. */
  steady: number
  /** Highest reading within a second of streaming, garbage not yet freed included (upper bound). */
  peak: number
  total: number
}

/** A gateway that accepts TCP connections and never answers: connects succeed, nothing else does. */
async function silentGateway(): Promise<{ port: number; close(): Promise<void> }> {
  const held = new Set<net.Socket>()
  const server = net.createServer((s) => {
    held.add(s)
    s.on('error', () => undefined)
    s.on('close', () => held.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of held) s.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/**
 * Loads the bundle from Storage (.bootcde, as after `mhealth flash`) on a virtual ESP32 wired
 * like a real board (rig.ts: ATECC608, MAX30102, AD8232, battery), SE profile, WiFi up and
 * a gateway that accepts TCP but never answers, so frames go to the flash ring; runs 10
 * virtual seconds so every buffer, the ring and the MQTT client exist, collects garbage
 * (Espruino frees at once, V8 later) and reads the JsVar usage. Also sends the bundle to RAM
 * on a blank board, for the RAM figure. Throws FirmwareBuildError when the firmware does not
 * stream.
 */
export async function estimateMemory(code: string): Promise<MemoryEstimate> {
  const loadedFromRam = await ramFigure(code)
  const gw = await silentGateway()
  const rig = await createBoardRig({ id: 'memcheck', bundle: code, gcPump: false, battery: false })
  try {
    const { board } = rig
    await board.collect()
    const loaded = board.memory().usage
    const id = deviceIdFromPublicKey(nodeHash, rig.readPublicKey())
    rig.configure({ id, profile: 'se', slot: 0, t: Date.now(), wifi: { ssid: 'clinic', pass: 'memcheck' }, gw: { host: '127.0.0.1', mqttPort: gw.port, httpPort: gw.port } })
    board.boot()
    let peak = 0
    for (let i = 0; i < 10; i++) {
      board.advance(1000)
      // Before collecting: live data plus this second's garbage, an upper bound.
      peak = Math.max(peak, board.memory().usage)
      await board.collect()
    }
    const s = rig.status()
    // 10 virtual seconds make one frame per window (windowS from the firmware's defaults, 2 s);
    // the first window is shortened by the sensors' start-up.
    const windows = Math.floor(10 / DEFAULTS.windowS)
    if (!s || !s.up || !(s.stats.frames >= windows - 1)) throw new FirmwareBuildError(`the firmware did not stream on the virtual board: ${rig.lines.slice(-5).join(' | ')}`)
    return { loaded, loadedFromRam, steady: board.memory().usage, peak, total: board.memory().total }
  } finally {
    rig.close()
    await gw.close()
  }
}

/** JsVars in use once the bundle was sent to RAM on a board that is not provisioned. */
async function ramFigure(code: string): Promise<number> {
  const rig = await createBoardRig({ id: 'memcheck-ram', install: false, gcPump: false, battery: false })
  try {
    rig.board.load(code)
    await rig.board.collect()
    return rig.board.memory().usage
  } finally {
    rig.close()
  }
}
