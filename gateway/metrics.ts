/**
 * A minimal Prometheus text-format registry (exposition format 0.0.4): counters,
 * gauges (optionally computed at scrape time) and histograms. Names carry the
 * `mhealth_` prefix so they sort together on a shared Prometheus.
 */

type Labels = Record<string, string>

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const labelText = (l: Labels): string => {
  const keys = Object.keys(l)
  return keys.length === 0 ? '' : '{' + keys.map((k) => `${k}="${escapeLabel(l[k]!)}"`).join(',') + '}'
}

interface Metric {
  render(): string
}

export class Counter implements Metric {
  private values = new Map<string, { labels: Labels; v: number }>()
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels)
    const cur = this.values.get(key)
    if (cur) cur.v += by
    else this.values.set(key, { labels, v: by })
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.v ?? 0
  }
  /** Sum over every label set (e.g. all rejection reasons). */
  total(): number {
    let n = 0
    for (const { v } of this.values.values()) n += v
    return n
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    if (this.values.size === 0) lines.push(`${this.name} 0`)
    for (const { labels, v } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${v}`)
    return lines.join('\n')
  }
}

export class Gauge implements Metric {
  private v = 0
  constructor(readonly name: string, readonly help: string, private readonly compute?: () => number) {}
  set(v: number): void {
    this.v = v
  }
  inc(by = 1): void {
    this.v += by
  }
  dec(by = 1): void {
    this.v -= by
  }
  get(): number {
    return this.compute ? this.compute() : this.v
  }
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.get()}`].join('\n')
  }
}

export class Histogram implements Metric {
  private counts: number[]
  private sum = 0
  private n = 0
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.counts = new Array(buckets.length).fill(0)
  }
  observe(v: number): void {
    this.sum += v
    this.n++
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++
  }
  get count(): number {
    return this.n
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`))
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.n}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.n}`)
    return lines.join('\n')
  }
}

export class Registry {
  private metrics: Metric[] = []
  add<M extends Metric>(m: M): M {
    this.metrics.push(m)
    return m
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join('\n') + '\n'
  }
}

/** The gateway's metrics, created once per gateway instance. */
export function gatewayMetrics(sources: { connected: () => number; ledgerLag: () => number; registered: () => number }) {
  const r = new Registry()
  return {
    registry: r,
    devicesConnected: r.add(new Gauge('mhealth_devices_connected', 'Authenticated devices currently connected', sources.connected)),
    devicesRegistered: r.add(new Gauge('mhealth_devices_registered', 'Active devices in the registry', sources.registered)),
    framesAccepted: r.add(new Counter('mhealth_frames_accepted_total', 'Frames verified and stored durably')),
    framesDuplicate: r.add(new Counter('mhealth_frames_duplicate_total', 'Retransmitted frames acknowledged without storing again')),
    framesRejected: r.add(new Counter('mhealth_frames_rejected_total', 'Frames refused, by reason')),
    connectsRefused: r.add(new Counter('mhealth_connects_refused_total', 'CONNECT refusals, by reason')),
    verifySeconds: r.add(new Histogram('mhealth_verify_seconds', 'Frame signature/MAC verification time', [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05])),
    ingestSeconds: r.add(new Histogram('mhealth_ingest_seconds', 'Frame receipt to durable storage (PUBACK) time', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1])),
    ledgerLag: r.add(new Gauge('mhealth_ledger_lag_frames', 'Frames handed to the ledger and not yet durable', sources.ledgerLag)),
    forwardDropped: r.add(new Counter('mhealth_forward_dropped_total', 'Messages not sent to a client whose socket backlog is over limits.maxOutboundBytes')),
    rateLimited: r.add(new Counter('mhealth_rate_limited_total', 'Frames delayed by the per-device rate limit')),
  }
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>
