import t from 'tap'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { readRecord, readAnnotations, parseHeader, checksum16, BEAT_CODES } from '../../datasets/wfdb.ts'
import { readBidmcSignals, readBidmcNumerics } from '../../datasets/bidmc.ts'
import { sharedData } from '../helpers/cli.ts'

const mitdb = join(sharedData, 'ecg', 'mitdb')

for (const rec of ['100', '101', '103', '105']) {
  t.test(`mitdb ${rec}: header checksums and initial values match the decoded samples`, async (t) => {
    const r = readRecord(join(mitdb, rec))
    t.equal(r.fs, 360)
    t.equal(r.samples[0].length, 650000)
    for (let c = 0; c < r.nsig; c++) {
      t.equal(r.samples[c][0], r.signals[c].initialValue, `ch${c} initial value`)
      t.equal(checksum16(r.samples[c]), r.signals[c].checksum, `ch${c} checksum`)
    }
  })
}

t.test('nstdb noise records (gain 0 = default 200, baseline 0) decode with matching checksums', async (t) => {
  for (const name of ['bw', 'ma']) {
    const r = readRecord(join(sharedData, 'ecg', 'nstdb', name))
    t.equal(r.signals[0].gain, 200)
    t.equal(r.signals[0].baseline, 0)
    for (let c = 0; c < r.nsig; c++) t.equal(checksum16(r.samples[c]), r.signals[c].checksum, `${name} ch${c}`)
  }
})

t.test('CRLF headers parse like LF headers', async (t) => {
  const r = readRecord(join(sharedData, 'ecg', 'wfdb-sample', '100s'))
  t.equal(r.samples[0].length, 21600)
  t.equal(checksum16(r.samples[0]), r.signals[0].checksum)
  const lf = readFileSync(join(mitdb, '100.hea'), 'latin1')
  t.same(parseHeader(lf.replace(/\n/g, '\r\n')).signals, parseHeader(lf).signals)
})

t.test('record 100 annotations: 2274 = 2239 N + 33 A + 1 V + 1 rhythm', async (t) => {
  const a = readAnnotations(join(mitdb, '100'))
  t.equal(a.length, 2274)
  const count = (code: number) => a.filter((x) => x.code === code).length
  t.equal(count(1), 2239)
  t.equal(count(8), 33)
  t.equal(count(5), 1)
  t.equal(a.filter((x) => BEAT_CODES.has(x.code)).length, 2273)
  t.equal(a[0].aux, '(N\u0000', 'rhythm aux string keeps its trailing NUL')
  for (let i = 1; i < a.length; i++) if (a[i].sample < a[i - 1].sample) t.fail('annotation times must not decrease')
})

t.test('a missing record names the file', async (t) => {
  t.throws(() => readRecord(join(mitdb, '999')), /cannot read WFDB header .*999\.hea/)
})

t.test('BIDMC columns are found by name whatever their order', async (t) => {
  const dir = join(sharedData, 'ppg', 'bidmc', 'bidmc_csv')
  const s1 = readBidmcSignals(dir, 1)
  const s2 = readBidmcSignals(dir, 2)
  t.equal(s1.columns.PLETH.length, 60001)
  t.equal(s1.columns.PLETH[0], 0.43597)
  t.equal(s2.columns.PLETH[0], 0.63636)
  const n = readBidmcNumerics(dir, 1)
  t.equal(n.columns.PULSE[0], 93)
  t.equal(n.columns.SpO2.length, 481, '8 minutes of 1 Hz numerics, both ends included (as PLETH: 480 s x 125 Hz + 1)')
})
