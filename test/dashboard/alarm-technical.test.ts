/**
 * Technical alarms through the real chain: frames failing verification (NACKed by the
 * gateway), the lead-off flag of signed frames, and a board gone silent (the clock tick).
 */
import t from 'tap'
import { FLAG_LEAD_OFF } from '../../protocol/portable/frame.ts'
import { Board, startDashEnv } from './helpers.ts'
import { publishAcked } from '../gateway/helpers/devices.ts'

t.test('frames-rejected, lead-off and device-offline start and clear themselves on a real gateway', async (t) => {
  let clock = Date.now()
  const env = await startDashEnv(1, { now: () => clock, alarmTickMs: 0 })
  t.teardown(() => env.close())
  const [A] = env.patients
  const svc = env.dash.deps.alarmService
  const active = () => svc.list().map((a) => `${a.condition}:${a.state}`).sort()
  const until = async (pred: () => boolean, what: string): Promise<void> => {
    const end = Date.now() + 20_000
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
    if (!pred()) t.fail(`waited for ${what}; alarms: ${active().join(', ')}`)
  }
  let leadOff = false
  const board = new Board(A.device, env.mqttUrl, clock, () => (leadOff ? { flags: FLAG_LEAD_OFF } : {}))
  await board.connect()
  t.teardown(() => board.close())
  await board.send(1)
  clock += 1000

  // Three frames with a flipped signature bit: NACKed, counted, an alarm.
  for (let i = 0; i < 3; i++) {
    const bad = board.frame(100 + i)
    bad[bad.length - 1]! ^= 1
    await publishAcked(board.client!, `mhealth/dev/${A.device.id}/frames`, bad)
  }
  await until(() => active().includes('frames-rejected:active'), 'frames-rejected')
  t.pass('frames-rejected after 3 rejections')

  // Lead off for 6 s of frames: lead-off (5 s delay); back on: it clears.
  leadOff = true
  for (let i = 0; i < 6; i++) {
    await board.send(1)
    clock += 1000
  }
  await until(() => active().includes('lead-off:active'), 'lead-off')
  leadOff = false
  await board.send(1)
  await until(() => !active().includes('lead-off:active'), 'lead-off to clear')
  t.pass('lead-off came and went')

  // A minute on: no rejection since, so frames-rejected ends; no frame for 15 s: device-offline.
  clock += 61_000
  svc.tick()
  await until(() => active().includes('device-offline:active') && !active().includes('frames-rejected:active'), 'offline on, rejected off')
  await board.send(1)
  await until(() => active().length === 0, 'all clear')
  t.same(active(), [], 'technical alarms clear themselves')
  const all = svc.list({ all: true }).map((a) => a.condition).sort()
  t.same(all, ['device-offline', 'frames-rejected', 'lead-off'])
})
