/**
 * Fleet benchmark: `npx tsx bench/fleet.ts [--devices 100,1000] [--seconds 60] [--speed 1000]`
 *
 * For each fleet size, in a child process of its own (so peak RSS is that size's alone):
 * a real gateway (`mhealth gateway`, its own process, default ledger store) and N virtual
 * boards running the built firmware bundle (even boards SE/ES256, odd bare/HMAC), provisioned
 * through the admin API, then run for S simulated seconds as fast as the host allows
 * (--speed is the cap). Printed side by side: provisioning time, wall time of the run,
 * virtual/real ratio, real ms per board per simulated second, frames acknowledged vs made,
 * peak RSS of the fleet process and of the gateway, RSS per board.
 */
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1]! : dflt
}

interface Result {
  devices: number
  seconds: number
  provisionMs: number
  runMs: number
  frames: number
  acked: number
  stored: number
  backlog: number
  oom: number
  reboots: number
  peakRssMb: number
  baseRssMb: number
  gatewayPeakRssMb: number
  gcCount: number
  gcMs: number
}

async function one(devices: number, seconds: number, speed: number): Promise<Result> {
  const data = mkdtempSync(join(tmpdir(), 'mh-bench-fleet-gw-'))
  const gw = spawn(process.execPath, [join(root, 'bin', 'mhealth.js'), 'gateway', '--data', data, '--mqtt-port', 'auto', '--mqtts-port', '0', '--ws-port', '0', '--http-port', 'auto', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const ready = await new Promise<{ ports: { mqtt: number; http: number } }>((resolve, reject) => {
      let buf = ''
      gw.stdout!.on('data', (d) => {
        buf += d
        const line = buf.split('\n').find((l) => l.includes('"ready"'))
        if (line) resolve(JSON.parse(line))
      })
      gw.on('exit', (c) => reject(new Error(`gateway exited ${c}`)))
    })
    const { Fleet } = await import('../hardware-sim/fleet/fleet.ts')
    const { firmwareBundle } = await import('../hardware-sim/rig.ts')
    const bundle = await firmwareBundle()
    const baseRssMb = process.memoryUsage().rss / 1e6
    const httpUrl = `http://127.0.0.1:${ready.ports.http}`
    const t0 = performance.now()
    const fleet = await Fleet.start({
      devices, bundle, seed: 1, speed,
      gateway: { httpUrl, adminToken: readFileSync(join(data, 'admin.token'), 'utf8').trim(), mqttPort: ready.ports.mqtt },
      provisionConcurrency: 32,
      onProvisioned: (n, total) => {
        if (n % 100 === 0 || n === total) process.stderr.write(`  provisioned ${n}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`)
      },
    })
    const provisionMs = performance.now() - t0
    const t1 = performance.now()
    await fleet.run({
      untilMs: seconds * 1000,
      pollMs: 10_000,
      onTick: (s) => process.stderr.write(`  t=${(s.virtualMs / 1000).toFixed(1)}s connected ${s.connected}/${s.devices} acked ${s.acked} backlog ${s.backlog} oom ${s.outOfMemory} gc ${fleet.gcStats.count}/${(fleet.gcStats.ms / 1000).toFixed(1)}s rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (${((performance.now() - t1) / 1000).toFixed(0)} s)\n`),
    })
    const runMs = performance.now() - t1
    const gc = { ...fleet.gcStats }
    await fleet.quiesce()
    const s = fleet.poll()
    const metrics = await (await fetch(`${httpUrl}/metrics`)).text()
    const stored = Number(/^mhealth_frames_accepted_total (\d+)/m.exec(metrics)?.[1] ?? 0)
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))
    await fleet.close()
    return {
      devices, seconds, provisionMs, runMs, frames: s.frames, acked: s.acked, stored, backlog: s.backlog, oom: s.outOfMemory, reboots: s.reboots,
      peakRssMb: process.resourceUsage().maxRSS / 1024, baseRssMb, gatewayPeakRssMb: hwm ? Number(hwm[1]) / 1024 : NaN,
      gcCount: gc.count, gcMs: gc.ms,
    }
  } finally {
    gw.kill('SIGTERM')
    await new Promise((r) => gw.once('exit', r))
    rmSync(data, { recursive: true, force: true })
  }
}

if (process.argv.includes('--one')) {
  const r = await one(Number(arg('--one', '10')), Number(arg('--seconds', '60')), Number(arg('--speed', '1000')))
  process.stdout.write('RESULT ' + JSON.stringify(r) + '\n')
} else {
  const sizes = arg('--devices', '100,1000').split(',').map(Number)
  const seconds = Number(arg('--seconds', '60'))
  const speed = arg('--speed', '1000')
  const results: Result[] = []
  for (const n of sizes) {
    process.stderr.write(`fleet of ${n} for ${seconds} simulated s...\n`)
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--one', String(n), '--seconds', String(seconds), '--speed', speed], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 }).toString()
    const line = out.split('\n').find((l) => l.startsWith('RESULT '))
    if (!line) throw new Error(`no result for ${n} devices`)
    results.push(JSON.parse(line.slice(7)))
  }
  const rows: Array<[string, (r: Result) => string]> = [
    ['boards', (r) => String(r.devices)],
    ['provisioning (SE keygen + admin API), s', (r) => (r.provisionMs / 1000).toFixed(1)],
    ['run: wall time for the simulated seconds, s', (r) => (r.runMs / 1000).toFixed(1)],
    ['simulated s per real s', (r) => (r.seconds / (r.runMs / 1000)).toFixed(2)],
    ['real ms per board per simulated s', (r) => (r.runMs / r.devices / r.seconds).toFixed(2)],
    ['frames made / acknowledged / stored by the gateway', (r) => `${r.frames} / ${r.acked} / ${r.stored}`],
    ['frames left in flash at the end, reboots, boards out of memory', (r) => `${r.backlog}, ${r.reboots}, ${r.oom}`],
    ['forced GCs (garbage pump): count, share of wall time', (r) => `${r.gcCount}, ${((100 * r.gcMs) / r.runMs).toFixed(0)} %`],
    ['peak RSS fleet process, MB (before boards)', (r) => `${r.peakRssMb.toFixed(0)} (${r.baseRssMb.toFixed(0)})`],
    ['RSS per board, MB', (r) => ((r.peakRssMb - r.baseRssMb) / r.devices).toFixed(2)],
    ['peak RSS gateway process, MB', (r) => r.gatewayPeakRssMb.toFixed(0)],
  ]
  const w = Math.max(...rows.map((r) => r[0].length))
  process.stdout.write(`\nfleet bench, ${seconds} simulated s, ${execFileSync('nproc').toString().trim()} cores\n`)
  for (const [name, f] of rows) process.stdout.write(`${name.padEnd(w)}  ${results.map((r) => f(r).padStart(22)).join('')}\n`)
  if (results.length >= 2) {
    const [a, b] = [results[0]!, results[results.length - 1]!]
    process.stdout.write(`ratio ${b.devices}/${a.devices} boards: wall ${(b.runMs / a.runMs).toFixed(2)}x for ${(b.devices / a.devices).toFixed(0)}x the boards; RSS ${(b.peakRssMb / a.peakRssMb).toFixed(2)}x\n`)
  }
}
