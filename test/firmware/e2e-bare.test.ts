/**
 * End to end, bare profile: the built bundle on the virtual board against the real gateway
 * (helpers/e2e-scenario.ts): WiFi drop of 60 s, gateway restart, reboot while offline,
 * brown-out mid-write; every frame stored once, verified, no sequence number reused.
 */
import t from 'tap'
import { runScenario, assertScenario } from './helpers/e2e-scenario.ts'

// About 200 virtual seconds at 20x, plus a gateway restart: longer than tap's 30 s default.
t.setTimeout(150_000)

t.test('bare profile: stream through drops, restarts and reboots; nothing lost, duplicated or reused', async (t) => {
  const r = await runScenario('bare', 22, (fn) => t.teardown(fn))
  assertScenario(t, r)
  if (process.env.RIG_DEBUG) console.error(r.log.join('\n'))
})
