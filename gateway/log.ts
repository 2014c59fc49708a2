/** Structured logs: one JSON object per line, `msg` plus fields; `reason` says why for refusals. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export function jsonLogger(out: { write(s: string): unknown }, min: LogLevel = 'info'): Logger {
  return {
    log(level, msg, fields) {
      if (order[level] < order[min]) return
      out.write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }) + '\n')
    },
  }
}

/** Collects entries in memory (tests read `entries`). */
export function memoryLogger(): Logger & { entries: Array<{ level: LogLevel; msg: string } & Record<string, unknown>> } {
  const entries: Array<{ level: LogLevel; msg: string } & Record<string, unknown>> = []
  return { entries, log: (level, msg, fields) => void entries.push({ level, msg, ...fields }) }
}

export const silentLogger: Logger = { log() {} }
