/**
 * The FHIR export written while it is built, so a day of frames never stalls the gateway:
 * the Bundle's opening and its Patient entry, then the entries of a few frames at a time
 * (read, decoded and given the gateway's vitals only then), handing the event loop back
 * between chunks so MQTT ingest, PUBACKs and /healthz run in between, then the Bundle id
 * (it names every frame, so it comes last: key order means nothing in JSON) and the end.
 *
 * A chunk is sized to take about `sliceMs` of the event loop on this machine; a client
 * that reads slowly is waited for ('drain'), never buffered for; one that goes away stops
 * the work at the next chunk. The output parses to the same Bundle buildFhirBundle gives.
 */
import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { decodeFrame } from '../protocol/node/decode.ts'
import { FhirBundleAssembler, type ExportFrame, type FhirExportOptions } from './fhir.ts'
import type { FramePages } from './deps.ts'
import { leafHashOf } from './leaf-hash.ts'
import { VitalsTracker } from './vitals.ts'
import type { Spo2CalibrationSource } from '../gateway/spo2-calibration-dir.ts'

export interface StreamExportOptions extends FhirExportOptions {
  /** Frames in the first chunk (default 2: the code is cold); later chunks are sized to take about `sliceMs`. */
  chunkFrames?: number
  /** Event-loop time a chunk should take (default 1 ms): what a PUBACK or /healthz may wait behind it. */
  sliceMs?: number
  /** Stops the export (the gateway is shutting down). */
  signal?: AbortSignal
  /** Sent with the 200 (content type, disposition). */
  headers?: Record<string, string>
  /** The R->SpO2 calibrations the gateway computes SpO2 with (default: the simulator's curve). */
  calibrations?: Spo2CalibrationSource
}

export interface ExportResult {
  /** Frames in the Bundle. */
  frames: number
  /** Stored frames that no longer decode, left out. */
  skipped: number
  /** True when the client went away (or the signal fired) before the end. */
  aborted: boolean
}

const MAX_CHUNK_FRAMES = 256
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * A stored frame as the export writes it. Frames without board-computed values get the
 * gateway's (signal/ over the raw samples): `vitals` must see each device's frames oldest
 * first. Null for a frame that no longer decodes (it was verified at ingest: left out, not guessed at).
 */
export function exportFrameOf(bytes: Uint8Array, patientId: string, vitals: VitalsTracker): ExportFrame | null {
  try {
    const p = decodeFrame(bytes).payload
    const v = vitals.add(patientId, p)
    const fill = (k: 'hr' | 'pr' | 'spo2') => (p[k] ?? (v[k] ? { value: v[k]!.value, quality: v[k]!.quality } : undefined))
    const payload = { ...p, hr: fill('hr'), pr: fill('pr'), spo2: fill('spo2') }
    for (const k of ['hr', 'pr', 'spo2'] as const) if (payload[k] === undefined) delete payload[k]
    const cal = !p.spo2 && v.spo2?.calibration ? { spo2Calibration: v.spo2.calibration } : {}
    return { payload, frameHash: leafHashOf(bytes), ...(v.ecg ? { ecg: v.ecg } : {}), ...cal }
  } catch {
    return null
  }
}

/** Resolves once `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/**
 * Streams the Bundle of `pages` to `res` (status 200 once the options are checked). Throws
 * on a bad option before anything is sent; an error after that is thrown too, and the
 * caller's sendError cuts the response off (a client sees a truncated body, never a
 * Bundle that looks complete).
 */
export async function streamFhirBundle(res: ServerResponse, pages: FramePages, o: StreamExportOptions): Promise<ExportResult> {
  const a = new FhirBundleAssembler(o)
  const sliceMs = o.sliceMs ?? 1
  let n = Math.max(1, Math.min(MAX_CHUNK_FRAMES, o.chunkFrames ?? 2))
  const vitals = new VitalsTracker({ calibrations: o.calibrations })
  const result: ExportResult = { frames: 0, skipped: 0, aborted: false }
  let stopped = false
  const stop = (): void => {
    stopped = true
  }
  res.once('close', stop)
  o.signal?.addEventListener('abort', stop)
  const write = async (text: string): Promise<void> => {
    if (!res.write(text)) await drained(res)
  }
  try {
    res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'application/fhir+json; charset=utf-8', ...o.headers })
    await write(`{"resourceType":"Bundle","type":${JSON.stringify(a.type)},"entry":[${JSON.stringify(a.patientEntry())}`)
    while (!stopped && !o.signal?.aborted) {
      const started = performance.now()
      const page = await pages.next(n)
      if (page === null) break
      const frames: ExportFrame[] = []
      for (const bytes of page) {
        const f = exportFrameOf(bytes, o.patientId, vitals)
        if (f) frames.push(f)
        else result.skipped++
      }
      let text = ''
      for (const e of a.frameEntries(frames)) text += ',' + JSON.stringify(e)
      result.frames += frames.length
      // The next chunk sized from this one's cost per frame (at most doubling: one cheap chunk proves little).
      if (page.length > 0) {
        const perFrame = Math.max(performance.now() - started, 0.05) / page.length
        n = Math.max(1, Math.min(MAX_CHUNK_FRAMES, 2 * n, Math.round(sliceMs / perFrame)))
      }
      if (text) await write(text)
      await yieldToLoop()
    }
    if (stopped || o.signal?.aborted) {
      result.aborted = true
      if (!res.destroyed) res.destroy() // shutting down: a cut-off body, not a Bundle that looks complete
      return result
    }
    let alarms = ''
    for (const e of a.alarmEntries(o.alarms ?? [])) alarms += ',' + JSON.stringify(e)
    res.end(`${alarms}],"id":${JSON.stringify(a.bundleId())}}\n`)
    return result
  } finally {
    pages.close()
    res.off('close', stop)
    o.signal?.removeEventListener('abort', stop)
  }
}
