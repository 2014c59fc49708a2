/**
 * ECG chain cost: `npx tsx bench/ecg-chain.ts [--quick]`.
 *
 * Feeds the MIT-BIH records we have (25, 30 min each at 360 Hz) through the QRS detector alone
 * and through the whole streaming chain the gateway runs per board (EcgMonitor: QRS, displayed
 * rate, beat shapes and classes, rhythm), side by side in one run, and prints:
 *  - times real time on one core for each (record seconds over wall seconds);
 *  - what beat classes and rhythm add per beat (chain minus QRS, over the beats);
 *  - the core share a gateway with 1,000 boards would spend on the chain (at 360 Hz here;
 *    boards stream 128 sps, so this overstates them by about 2.8x).
 * Each record is run twice and the faster run kept (the first warms the JIT).
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { existsSync } from 'node:fs'
import { readRecord } from '../datasets/wfdb.ts'
import { DS1_RECORDS } from '../datasets/aami.ts'
import { QrsDetector } from '../signal/qrs.ts'
import { runChain } from '../signal/record-run.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const data = [process.env.MHEALTH_SHARED_DATA ?? '', join(root, '..', 'shared', 'data')].find((p) => p && existsSync(p))
if (!data) throw new Error('shared data folder not found; set MHEALTH_SHARED_DATA')
if (process.argv.includes('--help')) {
  console.log('Usage: npx tsx bench/ecg-chain.ts [--quick]\n\nQRS alone vs the whole ECG chain over the MIT-BIH records in ../shared/data (--quick: 5 records).')
  process.exit(0)
}
const quick = process.argv.includes('--quick')
const records = quick ? ['100', '105', '119', '203', '208'] : ['100', '103', '105', ...DS1_RECORDS]

function best(f: () => void): number {
  let min = Infinity
  for (let k = 0; k < 2; k++) {
    const t0 = process.hrtime.bigint()
    f()
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e9)
  }
  return min
}

let seconds = 0, tQrs = 0, tChain = 0, beats = 0
console.log('| record | seconds | beats | QRS x real time | chain x real time |')
console.log('|---|---:|---:|---:|---:|')
for (const rec of records) {
  const r = readRecord(join(data, 'ecg', 'mitdb', rec))
  const x = r.samples[0]!
  const s = x.length / r.fs
  let n = 0
  const q = best(() => {
    const d = new QrsDetector({ fs: r.fs })
    for (let i = 0; i < x.length; i++) d.push(x[i]!)
    d.finish()
  })
  const c = best(() => { n = runChain(x, r.fs).beats.length })
  seconds += s; tQrs += q; tChain += c; beats += n
  console.log(`| ${rec} | ${s.toFixed(0)} | ${n} | ${(s / q).toFixed(0)} | ${(s / c).toFixed(0)} |`)
}
const share = (1000 * tChain) / seconds
console.log(`\nQRS alone: ${(seconds / tQrs).toFixed(0)}x real time; whole chain (QRS, HR, classes, rhythm): ${(seconds / tChain).toFixed(0)}x real time (target >= 1,000x)`)
console.log(`classes and rhythm add ${((1e6 * (tChain - tQrs)) / beats).toFixed(1)} us per beat (${beats} beats), ${((tChain / tQrs - 1) * 100).toFixed(0)} % over QRS alone`)
console.log(`1,000 boards at 360 Hz: ${(100 * share).toFixed(1)} % of one core (target < 10 %); at the boards' 128 sps about ${((100 * share * 128) / 360).toFixed(1)} %`)
