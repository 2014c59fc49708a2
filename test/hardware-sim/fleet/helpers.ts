/**
 * Shared by the fleet tests: drain a stopped fleet (in-flight PUBACKs processed, nothing
 * waiting) and check, per board, what the real gateway stored against what the board says.
 */
import type { Fleet } from '../../../hardware-sim/fleet/fleet.ts'
import { verifyFrame } from '../../../protocol/node/verify.ts'
import type { RecordingStore } from '../../../testing/real-gateway.ts'

/**
 * After stop(): steps the fleet in small virtual steps until every board is connected with
 * nothing left in flash, then lets the PUBACKs already on their way arrive (quiesce), so the
 * boards' acknowledged counts and the gateway's store can be compared exactly.
 */
export async function drain(fleet: Fleet, maxRounds = 300): Promise<void> {
  for (let i = 0; ; i++) {
    const s = fleet.poll()
    if (s.backlog === 0 && s.connected === s.devices) break
    if (i >= maxRounds) throw new Error(`fleet did not drain: backlog ${s.backlog}, connected ${s.connected}/${s.devices}`)
    await new Promise((r) => setTimeout(r, 20))
    await fleet.advance(50)
  }
  await fleet.quiesce()
}

export interface BoardCheck {
  index: number
  id: string
  stored: number
  acked: number
  seqs: number[]
  badSignatures: number
  /** Sequence numbers missing between the first and last stored, per boot. */
  gaps: number[]
  frames: Array<{ seq: number; boot: number; t0: number; flags: number; ppgN: number; dropped: number }>
}

export function checkBoards(fleet: Fleet, store: RecordingStore): BoardCheck[] {
  return fleet.boards.map((b) => {
    const mine = store.frames.filter((f) => f.meta.deviceId === b.id)
    let bad = 0
    const frames: BoardCheck['frames'] = []
    for (const f of mine) {
      try {
        const p = verifyFrame(f.bytes, b.key).payload
        frames.push({ seq: p.seq, boot: p.boot, t0: p.t0, flags: p.flags, ppgN: (p.red as ArrayLike<number> | undefined)?.length ?? 0, dropped: p.dropped })
      } catch {
        bad++
      }
    }
    frames.sort((x, y) => x.seq - y.seq)
    const gaps: number[] = []
    for (let i = 1; i < frames.length; i++) {
      if (frames[i]!.boot !== frames[i - 1]!.boot) continue // sequence blocks skip between boots by design
      for (let s = frames[i - 1]!.seq + 1; s < frames[i]!.seq; s++) gaps.push(s)
    }
    return { index: b.index, id: b.id, stored: mine.length, acked: b.totals.acked, seqs: frames.map((f) => f.seq), badSignatures: bad, gaps, frames }
  })
}

/** `name{reason="r"} N` values from the gateway's /metrics. */
export async function metric(httpUrl: string, name: string, reason?: string): Promise<number> {
  const text = await (await fetch(httpUrl + '/metrics')).text()
  const re = new RegExp(`^${name}${reason ? `\\{reason="${reason}"\\}` : ''} (\\d+(?:\\.\\d+)?)$`, 'm')
  const m = re.exec(text)
  return m ? Number(m[1]) : 0
}
