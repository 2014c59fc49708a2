/**
 * Peak memory of `mhealth backup` and `mhealth restore` against the size of the ledger
 * (issue 13: a Raspberry Pi backing up months of a ward): ledgers of growing size are
 * written straight into a real gateway's ledger (testing/ledger-frames.ts), then the real
 * CLI backs each up and restores it in a child process whose peak resident set (VmHWM,
 * /proc) is read while it runs. Side by side in one run: if memory followed the ledger, the
 * peaks would grow as the ledgers do.
 *
 *   npx tsx bench/backup.ts [--frames 100000,200000,400000]
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { resolveConfig } from '../gateway/config.ts'
import { startGateway } from '../gateway/gateway.ts'
import { silentLogger } from '../gateway/log.ts'
import { generateKey } from '../protocol/node/keys.ts'
import { fillLedger, ledgerOf } from '../testing/ledger-frames.ts'
import type { DeviceSigningKey } from '../protocol/node/sign.ts'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '100000,200000,400000' }, help: { type: 'boolean' } } })
if (values.help) {
  console.log('Usage: npx tsx bench/backup.ts [--frames N,N,...]\n\nPeak RSS of mhealth backup and restore for ledgers of N one-second frames each.')
  process.exit(0)
}
const sizes = values.frames!.split(',').map(Number)
if (sizes.some((n) => !(Number.isInteger(n) && n > 0))) {
  console.error(`--frames: expected positive integers, got ${values.frames}`)
  process.exit(2)
}
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'mhealth.js')

/** Runs the CLI; resolves with its exit code and the peak VmHWM (kB) seen while it ran. */
function peakOf(args: string[]): Promise<{ code: number; peakKb: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now()
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
    let peak = 0
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        if (m) peak = Math.max(peak, Number(m[1]))
      } catch {
        // exited between ticks
      }
    }, 20)
    child.on('error', reject)
    child.on('close', (code) => {
      clearInterval(timer)
      resolve({ code: code ?? -1, peakKb: peak, ms: performance.now() - t })
    })
  })
}

const du = (dir: string): number => readdirSync(dir).reduce((s, n) => s + statSync(join(dir, n)).size, 0)

console.log('| frames | ledger MB | archive MB | backup peak MB | backup s | restore peak MB | restore s |')
console.log('|---:|---:|---:|---:|---:|---:|---:|')
for (const n of sizes) {
  const root = mkdtempSync(join(tmpdir(), 'mh-bench-backup-'))
  try {
    const data = join(root, 'data')
    const gw = await startGateway(resolveConfig({ dataDir: data, mqttPort: 0, mqttsPort: 0, wsPort: 0, httpPort: 0, logLevel: 'error' }), { log: silentLogger })
    const key = generateKey('hmac') as DeviceSigningKey
    await fillLedger(ledgerOf(gw), key, { fromMs: Date.now() - n * 1000, count: n })
    await gw.close()
    const archive = join(root, 'backup.tar.gz')
    const b = await peakOf(['backup', '--data', data, '--out', archive])
    if (b.code !== 0 || !existsSync(archive)) throw new Error(`backup of ${n} frames failed (exit ${b.code})`)
    const r = await peakOf(['restore', '--from', archive, '--data', join(root, 'restored')])
    if (r.code !== 0) throw new Error(`restore of ${n} frames failed (exit ${r.code})`)
    const mb = (x: number) => (x / 1e6).toFixed(0)
    console.log(`| ${n} | ${mb(du(join(data, 'ledger')))} | ${mb(statSync(archive).size)} | ${(b.peakKb / 1024).toFixed(0)} | ${(b.ms / 1000).toFixed(1)} | ${(r.peakKb / 1024).toFixed(0)} | ${(r.ms / 1000).toFixed(1)} |`)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
