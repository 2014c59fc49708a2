#!/usr/bin/env node
// Runs the tap suite and ends with the plain summary line CI reads:
// "N passed, N failed" (asserts), after tap's own report.
// Two phases: everything but test/long/ (two files at a time), then test/long/ one file at
// a time with the machine to itself (the 1,000-board fleet: minutes of CPU on both cores).
// Arguments (test files or tap options) replace both phases with one plain tap run.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'

/** One tap run: its output passes through; resolves with the final assert counts. */
function tap(args) {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tap', '--reporter=terse', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let tail = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      tail = (tail + chunk.toString()).slice(-20000)
    })
    child.on('close', (code) => {
      const plain = tail.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      // The terse reporter redraws its progress lines; the last one is the final count.
      const all = [...plain.matchAll(/Asserts:\s+(\d+) pass\s+(\d+) fail/g)]
      const m = all[all.length - 1]
      const passed = m ? Number(m[1]) : 0
      let failed = m ? Number(m[2]) : 0
      if (code !== 0 && failed === 0) failed = 1 // a crashed file or runner error still counts as a failure
      resolve({ passed, failed, code: code ?? 1 })
    })
  })
}

const extra = process.argv.slice(2)
const long = existsSync('test/long') ? readdirSync('test/long').filter((f) => f.endsWith('.test.ts')).map((f) => `test/long/${f}`) : []
const phases = extra.length > 0 ? [extra] : [['--exclude=test/long/**'], ...(long.length > 0 ? [['--jobs=1', '--timeout=3600', ...long]] : [])]
let passed = 0
let failed = 0
let code = 0
for (const args of phases) {
  const r = await tap(args)
  passed += r.passed
  failed += r.failed
  if (r.code !== 0) code = r.code
}
process.stdout.write(`\n${passed} passed, ${failed} failed\n`)
process.exit(code)
