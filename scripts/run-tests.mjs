#!/usr/bin/env node
// Runs the tap suite and ends with the plain summary line CI reads:
// "N passed, N failed" (asserts), after tap's own report.
import { spawn } from 'node:child_process'

const args = ['tap', '--reporter=terse', ...process.argv.slice(2)]
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] })
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
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`)
  process.exit(code ?? 1)
})
