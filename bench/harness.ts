/** Small helpers shared by the benchmarks: timed loops and plain tables. */

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up); returns operations per second. */
export function opsPerSec(fn: () => void, ms = 1500): number {
  const warm = performance.now() + Math.min(300, ms / 4)
  while (performance.now() < warm) fn()
  let n = 0
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    for (let i = 0; i < 16; i++) fn()
    n += 16
    now = performance.now()
  }
  return (n * 1000) / (now - start)
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)))
  const line = (r: Array<string | number>) => r.map((c, i) => String(c).padStart(widths[i])).join('  ')
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US')
  return x.toFixed(x >= 10 ? 1 : 2)
}
