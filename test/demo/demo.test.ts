/**
 * `mhealth demo` (what `npm start` runs), as a user runs it: a real process with the
 * gateway, ledger, dashboard and virtual boards; log in, see the patients and their
 * frames arrive, Ctrl-C, verify the ledger, start again and see it continue.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot, runCli } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'

interface Running {
  child: ChildProcess
  out: string[]
  exited: Promise<number | null>
  waitLine(re: RegExp, ms?: number): Promise<RegExpExecArray>
}

function startDemo(dir: string, patients: number): Running {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/mhealth.js'), 'demo', '--data', dir, '--patients', String(patients),
    '--http-port', 'auto', '--mqtt-port', 'auto', '--mqtts-port', '0', '--ws-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  let partial = ''
  const waiters: Array<() => void> = []
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString()).split('\n')
    partial = parts.pop()!
    out.push(...parts)
    for (const w of waiters.splice(0)) w()
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => { for (const w of waiters.splice(0)) w(); r(code) }))
  return {
    child, out, exited,
    waitLine(re, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${ms} ms; stdout:\n${out.join('\n')}\nstderr:\n${stderr}`)), ms)
        const check = () => {
          for (const l of out) { const m = re.exec(l); if (m) { clearTimeout(timer); return resolve(m) } }
          if (child.exitCode !== null) { clearTimeout(timer); return reject(new Error(`demo exited ${child.exitCode}; stdout:\n${out.join('\n')}\nstderr:\n${stderr}`)) }
          waiters.push(check)
        }
        check()
      })
    },
  }
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line ? Number(line.split(' ')[1]) : NaN
}


t.test('npm start: gateway, ledger, dashboard and simulated patients, stopped and continued', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-demo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const first = startDemo(dir, 3)
  t.teardown(() => { first.child.kill('SIGKILL') })
  const url = (await first.waitLine(/^dashboard\s+(http:\/\/\S+)/))[1].replace(/\/$/, '')
  const pw = (await first.waitLine(/clinician login: clinician \/ (\S+)/))[1]
  t.equal(first.out.filter((l) => l.startsWith('provisioning ')).length, 3, 'three boards provisioned on first start')
  t.ok(statSync(join(dir, 'ward.json')).mode % 0o1000 === 0o600, 'ward.json (passwords, secrets) is private')

  t.equal((await fetch(`${url}/api/dash/patients`)).status, 401, 'nothing patient-related without a login')
  const login = await fetch(`${url}/api/dash/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'clinician', password: pw }) })
  t.equal(login.status, 200, 'clinician logs in with the printed password')
  const cookie = login.headers.get('set-cookie')!.split(';')[0]
  const patients = await (await fetch(`${url}/api/dash/patients`, { headers: { cookie } })).json() as unknown[]
  t.equal(patients.length, 3, 'the clinician sees the three consenting patients')

  await waitFor(async () => (await metric(url, 'mhealth_devices_connected')) === 3 && (await metric(url, 'mhealth_frames_accepted_total')) >= 9, 'frames from every board', 60_000, 250)
  t.equal(await metric(url, 'mhealth_frames_rejected_total'), 0, 'no frame refused')
  first.child.kill('SIGINT')
  t.equal(await first.exited, 0, 'Ctrl-C stops cleanly')
  const storedLine = first.out.map((l) => /^stopped; (\d+) frames stored this run$/.exec(l)).find((m) => m)
  t.ok(storedLine, 'says what it stored')

  const verify = await runCli(['ledger', 'verify', '--data', join(dir, 'gateway')])
  t.equal(verify.code, 0, `ledger verifies: ${verify.stdout.trim()}`)
  t.match(verify.stdout, `(${storedLine?.[1]} frames,`, 'the ledger holds exactly the frames the demo said it stored')
  const before = Number(/(\d+) leaves/.exec(verify.stdout)![1])

  const second = startDemo(dir, 3)
  t.teardown(() => { second.child.kill('SIGKILL') })
  const url2 = (await second.waitLine(/^dashboard\s+(http:\/\/\S+)/))[1].replace(/\/$/, '')
  t.equal(second.out.filter((l) => l.startsWith('provisioning ')).length, 0, 'the same boards come back, nothing provisioned again')
  await waitFor(async () => (await metric(url2, 'mhealth_frames_accepted_total')) >= 6, 'frames after the restart', 60_000, 250)
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0, 'SIGTERM stops cleanly too')
  const again = await runCli(['ledger', 'verify', '--data', join(dir, 'gateway')])
  t.equal(again.code, 0, 'still verifies')
  t.ok(Number(/(\d+) leaves/.exec(again.stdout)![1]) > before, 'the ledger continued')
})
