/**
 * `mhealth sim` and `mhealth sim attack` against a real gateway process leave no active
 * device in its registry: the fleet stopped with Ctrl-C (SIGINT) and the attack run to its
 * end both delete what they registered (tombstones: their frames still verify).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot, runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnGateway } from '../gateway/helpers/process.ts'

t.setTimeout(240_000)

const devices = async (data: string): Promise<Array<{ id: string; status: string; patient: string }>> => {
  const r = await runCli(['device', 'list', '--json', '--data', data])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout)
}

t.test('sim stopped with SIGINT deletes its boards from the registry', async (t) => {
  const data = tempDir('mh-simlife-')
  const gp = await spawnGateway(data, ['--log-level', 'warn'])
  t.teardown(() => gp.kill9())
  // One device of the clinic's own, which the simulator must leave alone.
  const own = await runCli(['keygen', '--type', 'p256', '--out', join(data, 'keys')])
  const ownFile = (JSON.parse(own.stdout) as { file: string }).file
  t.equal((await runCli(['device', 'register', '--data', data, '--key', ownFile, '--patient', 'pt-ward-1'])).code, 0)

  const sim = spawn(process.execPath, [join(repoRoot, 'bin', 'mhealth.js'), 'sim', '--devices', '2', '--gateway', `http://127.0.0.1:${gp.ready.ports.http}`, '--mqtt-port', String(gp.ready.ports.mqtt), '--data', data, '--seed', '11'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => sim.kill('SIGKILL'))
  let out = ''
  let err = ''
  sim.stdout.on('data', (d) => (out += d))
  sim.stderr.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => sim.once('exit', (code) => r(code)))
  await waitFor(() => / up 2\/2 /.test(out), () => `both boards connected (stdout: ${out.slice(-300)}; stderr: ${err.slice(-300)})`, 180_000, 100)
  const during = await devices(data)
  t.equal(during.filter((d) => d.status === 'active').length, 3, 'the two boards are registered and active while the sim runs')

  sim.kill('SIGINT')
  t.equal(await exited, 0, `sim exits 0 after Ctrl-C (${err.slice(-300)})`)
  t.match(err, /deleted the 2 simulated devices/)
  const after = await devices(data)
  t.same(after.filter((d) => d.status === 'active').map((d) => d.patient), ['pt-ward-1'], 'only the clinic\'s own device is still active')
  t.same(after.filter((d) => d.patient.startsWith('sim-11-')).map((d) => d.status), ['deleted', 'deleted'], 'the boards are tombstones')
  t.equal(await gp.stop(), 0)
  const v = await runCli(['ledger', 'verify', '--data', join(data, 'ledger')])
  t.equal(v.code, 0, `their frames still verify: ${v.stdout}${v.stderr}`)
})

t.test('sim attack deletes its attacker and victim devices', async (t) => {
  const data = tempDir('mh-simlife-')
  const gp = await spawnGateway(data, ['--log-level', 'warn'])
  t.teardown(() => gp.kill9())
  const r = await runCli(['sim', 'attack', 'tampered', '--gateway', `http://127.0.0.1:${gp.ready.ports.http}`, '--mqtt-port', String(gp.ready.ports.mqtt), '--data', data], { timeoutMs: 120_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /"attack":"tampered"/)
  const after = await devices(data)
  t.equal(after.length, 2, 'attacker and victim were registered')
  t.same(after.map((d) => d.status), ['deleted', 'deleted'], 'neither is left active')
  t.equal(await gp.stop(), 0)
})
