import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { runCli, repoRoot } from '../helpers/cli.ts'

t.test('top-level --help lists commands and exits 0', async (t) => {
  const r = await runCli(['--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /Usage: mhealth <command>/)
})

t.test('no command prints usage and exits 2', async (t) => {
  const r = await runCli([])
  t.equal(r.code, 2)
  t.match(r.stdout, /Commands:/)
})

t.test('unknown command is a usage error without a stack trace', async (t) => {
  const r = await runCli(['frobnicate'])
  t.equal(r.code, 2)
  t.match(r.stderr, /unknown command 'frobnicate'/)
  t.notMatch(r.stderr, /\bat .*\.ts:\d+/)
})

/** Runs `mhealth` with its stdout (or stderr) read end closed at once, as `mhealth ... | true` does. */
function runWithClosedReader(args: string[], which: 'stdout' | 'stderr'): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'mhealth.js'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    // The CLI takes far longer to load than this takes to run, so its first write meets a closed pipe.
    child[which].destroy()
    let stderr = ''
    if (which === 'stdout') child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stderr }))
  })
}

t.test('a closed stdout (`mhealth --help | true`) ends the command quietly with its own exit code', async (t) => {
  const r = await runWithClosedReader(['--help'], 'stdout')
  t.equal(r.signal, null)
  t.equal(r.code, 0, 'the exit code of --help, not a crash')
  t.equal(r.stderr, '', 'no EPIPE stack trace on stderr')
})

t.test('a closed stderr keeps the usage-error exit code', async (t) => {
  const r = await runWithClosedReader(['frobnicate'], 'stderr')
  t.equal(r.code, 2)
})
