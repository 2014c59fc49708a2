/**
 * The SpO2 calibrations a gateway uses: CAL.json files (gateway/spo2-calibration.ts)
 * installed in `<data>/calibrations/` under their IDs. For a device, its own
 * calibration wins over its sensor model's; without either, the simulator's
 * curve, named `spo2cal-simulator`, so that every SpO2 the gateway computes
 * names the curve behind it. Files are never removed by the gateway: a
 * reading stays reproducible from the signed raw samples and the named file.
 *
 * The directory is re-read when its modification time changes (checked at
 * most every `recheckMs`), so an installed calibration applies without a
 * restart. A file that fails its checks is logged and skipped.
 */
import { readdirSync, readFileSync, statSync, mkdirSync, writeFileSync, chmodSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CALIBRATION, type SpO2Calibration } from '../signal/ppg.ts'
import { checkCalibrationFile, CalibrationFileError, type CalibrationFile } from './spo2-calibration.ts'

export const SIMULATOR_CALIBRATION_ID = 'spo2cal-simulator'

/** The sensor model of the PPG lane of version-2 frames (and of the version-1 boards). */
export const BOARD_PPG_SENSOR = 'MAX30102'

export interface Spo2CalibrationChoice {
  id: string
  curve: SpO2Calibration
}

export interface Spo2CalibrationSource {
  forDevice(deviceId: string): Spo2CalibrationChoice
}

export const simulatorCalibration: Spo2CalibrationChoice = { id: SIMULATOR_CALIBRATION_ID, curve: DEFAULT_CALIBRATION }

/** Always the simulator's curve: tests and a gateway with no data directory. */
export const noCalibrations: Spo2CalibrationSource = { forDevice: () => simulatorCalibration }

export class Spo2CalibrationDir implements Spo2CalibrationSource {
  private byDevice = new Map<string, CalibrationFile>()
  private bySensor = new Map<string, CalibrationFile>()
  private mtimeMs = -1
  private checkedAt = -Infinity

  constructor(
    readonly dir: string,
    private readonly o: { recheckMs?: number; now?: () => number; warn?: (msg: string) => void } = {},
  ) {}

  forDevice(deviceId: string): Spo2CalibrationChoice {
    this.refresh()
    const f = this.byDevice.get(deviceId) ?? this.bySensor.get(BOARD_PPG_SENSOR)
    return f ? { id: f.id, curve: f.curve } : simulatorCalibration
  }

  list(): CalibrationFile[] {
    this.refresh(true)
    return [...this.byDevice.values(), ...this.bySensor.values()]
  }

  /** Installs a checked calibration file as `<id>.json` (0600); the newest per device or sensor applies. */
  install(file: CalibrationFile): string {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    const path = join(this.dir, `${file.id}.json`)
    // Written aside and renamed: a gateway re-reading the directory never sees half a file.
    const tmp = join(this.dir, `.${file.id}.${process.pid}.tmp`)
    writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 })
    chmodSync(tmp, 0o600)
    renameSync(tmp, path)
    this.checkedAt = -Infinity
    this.mtimeMs = -1
    return path
  }

  private refresh(force = false): void {
    const now = (this.o.now ?? Date.now)()
    if (!force && now - this.checkedAt < (this.o.recheckMs ?? 5000)) return
    this.checkedAt = now
    let m: number
    try {
      m = statSync(this.dir).mtimeMs
    } catch {
      this.byDevice.clear()
      this.bySensor.clear()
      this.mtimeMs = -1
      return
    }
    if (m === this.mtimeMs) return
    this.mtimeMs = m
    const dev = new Map<string, CalibrationFile>()
    const sen = new Map<string, CalibrationFile>()
    for (const name of readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort()) {
      const path = join(this.dir, name)
      let f: CalibrationFile
      try {
        f = checkCalibrationFile(JSON.parse(readFileSync(path, 'utf8')), path)
      } catch (e) {
        this.o.warn?.(e instanceof CalibrationFileError ? e.message : `${path}: ${(e as Error).message}`)
        continue
      }
      const map = f.device !== null ? dev : sen
      const key = (f.device ?? f.sensor)!
      const had = map.get(key)
      if (!had || had.createdAt < f.createdAt) map.set(key, f)
    }
    this.byDevice = dev
    this.bySensor = sen
  }
}
