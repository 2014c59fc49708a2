/**
 * `mhealth user add|passwd` at a real terminal (a pseudo-terminal made by util-linux
 * `script`): the password is asked twice and never echoed; two different answers change
 * nothing. Keys are typed only once the prompt shows, as a person would (typed earlier, the
 * terminal's own line discipline would echo them before the prompt turned echo off).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot, runCli } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'

const SCRIPT = '/usr/bin/script'
if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} not found: install the Debian package bsdutils (util-linux)`)

const dir = mkdtempSync(join(tmpdir(), 'mh-prompt-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Runs `mhealth ARGS` on a pseudo-terminal, typing each answer after the prompt that asks for it. */
async function atTerminal(args: string[], answers: string[]): Promise<{ code: number | null; screen: string }> {
  const cmd = [process.execPath, join(repoRoot, 'bin', 'mhealth.js'), ...args].map((a) => `'${a}'`).join(' ')
  const child = spawn(SCRIPT, ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.on('data', (d) => (screen += d))
  child.stderr.on('data', (d) => (screen += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  const prompts = ['Password: ', 'Repeat password: ']
  let from = 0
  for (let i = 0; i < answers.length; i++) {
    const prompt = prompts[i]!
    await waitFor(() => screen.indexOf(prompt, from) >= 0, () => `prompt '${prompt}'; screen so far: ${JSON.stringify(screen)}`, 30_000).catch((err: unknown) => {
      child.kill('SIGKILL') // a command that never asks would wait on the terminal forever
      throw err
    })
    from = screen.indexOf(prompt, from) + prompt.length
    child.stdin.write(answers[i] + '\r')
  }
  const code = await exited
  return { code, screen }
}

t.test('user add at a terminal: asked twice, nothing echoed', async (t) => {
  const r = await atTerminal(['user', 'add', 'nurse.kim', '--role', 'clinician', '--data', dir], ['kim-secret-pass', 'kim-secret-pass'])
  t.equal(r.code, 0, r.screen)
  t.match(r.screen, /Password: [\s\S]*Repeat password: /)
  t.notMatch(r.screen, /kim-secret-pass/, 'the password never shows on the terminal')
  t.match(r.screen, /"username":"nurse\.kim"/)
  const login = await runCli(['user', 'list', '--data', dir])
  t.match(login.stdout, /nurse\.kim/)
})

t.test('user passwd at a terminal: two different answers change nothing', async (t) => {
  const r = await atTerminal(['user', 'passwd', 'nurse.kim', '--data', dir], ['kim-new-pass-1', 'kim-new-pass-2'])
  t.equal(r.code, 1)
  t.match(r.screen, /the two passwords differ; nothing was changed/)
  t.notMatch(r.screen, /kim-new-pass/)
  const { DeviceRegistry } = await import('../../gateway/registry.ts')
  const reg = new DeviceRegistry(join(dir, 'registry.sqlite'))
  t.teardown(() => reg.close())
  t.match(await reg.checkUser('nurse.kim', 'kim-secret-pass'), { username: 'nurse.kim' }, 'the old password still works')

  const ok = await atTerminal(['user', 'passwd', 'nurse.kim', '--data', dir], ['kim-new-pass-1', 'kim-new-pass-1'])
  t.equal(ok.code, 0, ok.screen)
  t.notMatch(ok.screen, /kim-new-pass/)
  t.match(await reg.checkUser('nurse.kim', 'kim-new-pass-1'), { username: 'nurse.kim' }, 'the new password is set')
})
