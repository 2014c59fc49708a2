/** Config layering and validation: defaults < file < flags; every bad value named. */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, defaults, readConfigFile, resolveConfig } from '../../gateway/config.ts'
import { runCli } from '../helpers/cli.ts'

t.test('layers and defaults', async (t) => {
  const c = resolveConfig({ mqttPort: 1999, limits: { ratePerSec: 5 } }, { mqttPort: 'auto' })
  t.equal(c.mqttPort, 'auto')
  t.equal(c.limits.ratePerSec, 5)
  t.equal(c.limits.rateBurst, defaults.limits.rateBurst)
  t.equal(c.verify, 'auto')
  t.equal(resolveConfig({ mqttsPort: '0' as never }).mqttsPort, 0)
})

t.test('bad values are refused with the key named', async (t) => {
  const bad: Array<[object, RegExp]> = [
    [{ nope: 1 }, /unknown config key 'nope'/],
    [{ limits: { nope: 1 } }, /unknown config key 'limits.nope'/],
    [{ mqttPort: 70000 }, /mqttPort: expected a port/],
    [{ limits: { ratePerSec: -1 } }, /limits.ratePerSec: expected a positive number/],
    [{ verify: 'gpu' }, /verify: expected inline, pool or auto/],
    [{ verifyWorkers: 1.5 }, /verifyWorkers: expected an integer/],
    [{ retentionDays: 0 }, /retentionDays: expected a positive number/],
    [{ tlsCert: 'a.pem' }, /tlsCert and tlsKey must be given together/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ dataDir: '' }, /dataDir/],
  ]
  for (const [input, msg] of bad) t.throws(() => resolveConfig(input as never), msg as never, JSON.stringify(input))
})

t.test('config files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-cfg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.throws(() => readConfigFile(join(dir, 'missing.json')), ConfigError)
  writeFileSync(join(dir, 'bad.json'), '{ not json')
  t.throws(() => readConfigFile(join(dir, 'bad.json')), /not valid/)
  writeFileSync(join(dir, 'arr.json'), '[1]')
  t.throws(() => readConfigFile(join(dir, 'arr.json')), /expected a JSON object/)
  writeFileSync(join(dir, 'typo.json'), JSON.stringify({ mqtPort: 1 }))
  const r = await runCli(['gateway', '--config', join(dir, 'typo.json'), '--data', join(dir, 'd')])
  t.equal(r.code, 2)
  t.match(r.stderr, /unknown config key 'mqtPort'/)
  const m = await runCli(['gateway', '--config', join(dir, 'missing.json')])
  t.equal(m.code, 2)
  t.match(m.stderr, /cannot read config/)
})
