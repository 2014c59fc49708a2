/**
 * Reader for the BIDMC PPG and Respiration dataset's CSV files. Columns are
 * indexed by name because their order differs per record; time is row / fs
 * because the Time column is rounded.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const BIDMC_FS = 125

export interface BidmcSignals {
  fs: number
  /** Column name (trimmed, e.g. 'PLETH', 'II') to its samples. */
  columns: Record<string, Float64Array>
}

export interface BidmcNumerics {
  /** Seconds from the start of the record. */
  time: Float64Array
  /** 'HR', 'PULSE', 'RESP', 'SpO2'; NaN where the monitor had no value. */
  columns: Record<string, Float64Array>
}

function parseCsv(text: string, what: string): { names: string[]; rows: number[][] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '')
  if (lines.length < 2) throw new Error(`${what}: no data rows`)
  const names = lines[0].split(',').map((s) => s.trim())
  const rows: number[][] = []
  for (let i = 1; i < lines.length; i++) rows.push(lines[i].split(',').map((s) => (s.trim() === 'NaN' || s.trim() === '' ? NaN : Number(s))))
  return { names, rows }
}

function columnsOf(names: string[], rows: number[][]): Record<string, Float64Array> {
  const cols: Record<string, Float64Array> = {}
  names.forEach((name, c) => {
    const a = new Float64Array(rows.length)
    for (let r = 0; r < rows.length; r++) a[r] = rows[r][c]
    cols[name] = a
  })
  return cols
}

/** `dir` is the bidmc_csv folder; `record` is 1..53. */
export function readBidmcSignals(dir: string, record: number): BidmcSignals {
  const file = join(dir, `bidmc_${String(record).padStart(2, '0')}_Signals.csv`)
  const { names, rows } = parseCsv(readFileSync(file, 'utf8'), file)
  const cols = columnsOf(names, rows)
  delete cols['Time [s]']
  return { fs: BIDMC_FS, columns: cols }
}

export function readBidmcNumerics(dir: string, record: number): BidmcNumerics {
  const file = join(dir, `bidmc_${String(record).padStart(2, '0')}_Numerics.csv`)
  const { names, rows } = parseCsv(readFileSync(file, 'utf8'), file)
  const cols = columnsOf(names, rows)
  const time = cols['Time [s]']
  delete cols['Time [s]']
  return { time, columns: cols }
}
