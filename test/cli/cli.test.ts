import t from 'tap'
import { runCli } from '../helpers/cli.ts'

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
