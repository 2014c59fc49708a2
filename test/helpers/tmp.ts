import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []
let hooked = false

/**
 * A fresh directory under the OS temp dir, removed when the test process exits (a suite run
 * makes thousands; left behind they fill /tmp on a CI machine). Tests that look at the files
 * after a failure can set MHEALTH_KEEP_TMP=1.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  if (!hooked) {
    hooked = true
    process.on('exit', () => {
      if (process.env.MHEALTH_KEEP_TMP) return
      for (const d of made) rmSync(d, { recursive: true, force: true })
    })
  }
  return dir
}
