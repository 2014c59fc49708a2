import t from 'tap'
import { startRecorder } from '../../../hardware-sim/fleet/recorder.ts'
import { tempDir } from '../../helpers/tmp.ts'

t.test('the recorder admin API: registers bare devices, refuses bad bodies with JSON errors', async (t) => {
  const rec = await startRecorder(tempDir('mh-rec-'))
  t.teardown(() => rec.close())
  const post = (body: string) => fetch(`${rec.httpUrl}/api/devices`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })

  const ok = await post(JSON.stringify({ profile: 'bare', id: 'DEV0000000000000A', secret: '00'.repeat(32) }))
  t.equal(ok.status, 201)
  t.same(await ok.json(), { id: 'DEV0000000000000A' })
  t.equal(rec.devices.size, 1)

  const wrong = await post(JSON.stringify({ profile: 'se' }))
  t.equal(wrong.status, 400)
  t.match((await wrong.json()).error, /expected \{profile:"se", publicKey\}/)

  const garbled = await post('{not json')
  t.equal(garbled.status, 400, 'malformed JSON is a 400, not a crash')
  t.type((await garbled.json()).error, 'string')

  const huge = await post(JSON.stringify({ profile: 'bare', id: 'X', secret: 'ab'.repeat(20000) }))
  t.equal(huge.status, 413, 'a body over 16 KiB is refused')

  const nope = await fetch(`${rec.httpUrl}/api/nope`)
  t.equal(nope.status, 404)
  const time = await (await fetch(`${rec.httpUrl}/api/time`)).json()
  t.type(time.now, 'number')
  t.equal(rec.devices.size, 1, 'refused bodies registered nothing')
})
