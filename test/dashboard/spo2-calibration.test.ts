/**
 * A sensor calibration on a running gateway (issue 17): installed with the real CLI into the
 * gateway's data directory, it applies to the next frames without a restart; every SpO2 the
 * gateway computes names the calibration that produced it, on the live stream and in the
 * FHIR export, so the number can be recomputed from the signed raw samples.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ADMIN, Board, Client, openSse, startDashEnv } from './helpers.ts'
import { runCli } from '../helpers/cli.ts'
import { Spo2CalibrationDir, SIMULATOR_CALIBRATION_ID, type Spo2CalibrationSource } from '../../gateway/spo2-calibration-dir.ts'
import { makeCalibrationFile } from '../../gateway/spo2-calibration.ts'
import { fitCalibration } from '../../signal/ppg-calibration.ts'
import { DEFAULT_CALIBRATION } from '../../signal/ppg.ts'

t.test('an installed calibration applies live and every gateway SpO2 names it', async (t) => {
  // The data directory is made by startDashEnv: the source looks there once it exists.
  let dir: Spo2CalibrationDir | null = null
  const source: Spo2CalibrationSource = { forDevice: (id) => dir!.forDevice(id) }
  const env = await startDashEnv(1, { spo2Calibrations: source })
  t.teardown(() => env.close())
  dir = new Spo2CalibrationDir(join(env.dir, 'calibrations'), { recheckMs: 0 })
  const [pa] = env.patients
  const admin = new Client(env.base)
  await admin.login(ADMIN)
  t.equal((await admin.req('POST', `/api/dash/patients/${pa.id}/consent`, { action: 'grant', clinicianId: ADMIN.username })).status, 200)
  const sse = await openSse(admin)
  t.teardown(() => sse.close())
  await sse.next((e) => e.event === 'ready')

  const t0 = Date.now() - 120_000
  const board = new Board(pa.device, env.mqttUrl, t0)
  await board.connect()
  t.teardown(() => board.close())
  await board.send(12)
  const spo2Of = (e: { data: Record<string, unknown> }) => (e.data.vitals as { spo2?: { value: number; calibration?: string } }).spo2
  const before = await sse.next((e) => e.event === 'frame' && spo2Of(e) !== undefined)
  t.equal(spo2Of(before)!.calibration, SIMULATOR_CALIBRATION_ID, 'without a calibration: the simulator curve, named')
  const plain = spo2Of(before)!.value

  // The sensor model's calibration: the simulator's curve 3 points lower.
  const shifted = { ...DEFAULT_CALIBRATION, a: DEFAULT_CALIBRATION.a - 3 }
  const pts = Array.from({ length: 12 }, (_, i) => { const ratio = 0.4 + i * 0.08; return { ratio, spo2: shifted.a + shifted.b * ratio + shifted.c * ratio * ratio } })
  const file = makeCalibrationFile(fitCalibration(pts, 1), { sensor: 'MAX30102', device: null })
  const calPath = join(env.dir, '..', `${file.id}.json`)
  writeFileSync(calPath, JSON.stringify(file))
  const r = await runCli(['ppg', 'calibration', 'install', '--data', env.dir, '--file', calPath])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`installed ${file.id} \\(sensor MAX30102\\)`))
  const list = await runCli(['ppg', 'calibration', 'list', '--data', env.dir])
  t.match(JSON.parse(list.stdout.trim()), { id: file.id, sensor: 'MAX30102' })

  await board.send(12)
  const after = await sse.next((e) => e.event === 'frame' && spo2Of(e)?.calibration === file.id, 30_000)
  const v = spo2Of(after)!.value
  t.ok(Math.abs(plain - 3 - v) <= 1, `with the calibration: ${v} % (${plain} % - 3 with the simulator's curve)`)

  // The FHIR export says which calibration each gateway-computed SpO2 came from.
  const ex = await admin.req('GET', `/api/dash/patients/${pa.id}/fhir?from=${t0 - 1000}&to=${Date.now() + 1000}`)
  t.equal(ex.status, 200)
  const obs = ex.json<{ entry: Array<{ resource: { resourceType: string; code?: { coding: Array<{ code: string }> }; method?: { text: string } } }> }>()
    .entry.map((e) => e.resource).filter((r) => r.resourceType === 'Observation' && r.code!.coding.some((c) => c.code === '59408-5'))
  t.ok(obs.length > 0, `${obs.length} SpO2 Observations`)
  t.ok(obs.every((o) => /calibration spo2cal-/.test(o.method?.text ?? '')), 'each names its calibration')
  t.ok(obs.some((o) => o.method!.text.includes(file.id)), 'those after the install name the installed one')

  // A file that fails its checks is skipped, not applied; the gateway says why on its log path.
  writeFileSync(join(env.dir, 'calibrations', 'zz-broken.json'), '{"format":"mhealth-spo2-calibration/1"}')
  t.equal(dir.forDevice(pa.device.id).id, file.id, 'a broken file does not replace a good one')
  const bad = await runCli(['ppg', 'calibration', 'install', '--data', join(env.dir, 'nope'), '--file', calPath])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /is not a gateway data directory/)
})
