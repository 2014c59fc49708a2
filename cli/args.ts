import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './errors.ts'

type Options = NonNullable<ParseArgsConfig['options']>

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>
  positionals: string[]
}

/**
 * Strict argument parsing: unknown options, missing values and wrong positional
 * counts become UsageError (exit 2) with a message naming the problem.
 */
export function parseCli(argv: string[], options: Options, positionals: { min?: number; max?: number; names?: string[] } = {}): Parsed {
  let parsed: Parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as Parsed
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''))
  }
  const n = parsed.positionals.length
  const min = positionals.min ?? 0
  const max = positionals.max ?? 0
  const names = positionals.names?.join(' ') ?? ''
  if (n < min) throw new UsageError(`missing argument${min - n > 1 ? 's' : ''}: expected ${names || min + ' argument(s)'}`)
  if (n > max) throw new UsageError(`unexpected argument '${parsed.positionals[max]}'`)
  return parsed
}

export function stringOpt(p: Parsed, name: string): string | undefined {
  const v = p.values[name]
  return typeof v === 'string' ? v : undefined
}

export function requireOpt(p: Parsed, name: string): string {
  const v = stringOpt(p, name)
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`)
  return v
}

/** Integer option within [min, max]; `fallback` when absent. */
export function intOpt(p: Parsed, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = stringOpt(p, name)
  if (raw === undefined) return fallback
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} expects an integer, got '${raw}'`)
  const v = Number(raw)
  if (v < min || v > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`)
  return v
}

/** Finite number option within [min, max]; `fallback` when absent. */
export function numOpt(p: Parsed, name: string, fallback: number, min = -Infinity, max = Infinity): number {
  const raw = stringOpt(p, name)
  if (raw === undefined) return fallback
  const v = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got '${raw}'`)
  if (v < min || v > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`)
  return v
}

export function choiceOpt<T extends string>(p: Parsed, name: string, choices: readonly T[], fallback?: T): T {
  const raw = stringOpt(p, name)
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required; one of: ${choices.join(', ')}`)
    return fallback
  }
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${raw}'`)
  return raw as T
}
