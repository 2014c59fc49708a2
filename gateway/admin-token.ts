/**
 * The admin API's bearer token, kept in DATA/admin.token (mode 0600, made on first start by
 * identity.ts). Rotation writes a new one in place (temp file, fsync, rename); a running
 * gateway notices the file changed at the next admin request and from then on accepts only
 * the new token, so `mhealth admin-token rotate` needs no restart.
 */
import { readFileSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tokenMatcher } from '../http/auth.ts'
import { writeFileDurable } from './identity.ts'

/** Shorter than this, the file's content is not a token of ours (an editor's slip): the last good one stays. */
const MIN_TOKEN_CHARS = 16

/** Writes a fresh random token (32 bytes, base64url) to `file`; returns it. */
export function rotateAdminToken(file: string): string {
  const token = randomBytes(32).toString('base64url')
  writeFileDurable(file, token + '\n')
  return token
}

/**
 * A check of presented tokens against the one in `file`, re-read whenever the file changes
 * (a rename gives a new inode; an edit a new mtime or size). `initial` is what the gateway
 * read at start. No file: only `initial` is ever accepted.
 */
export function adminTokenCheck(initial: string, file?: string): (presented: string | null) => boolean {
  let match = tokenMatcher(initial)
  if (file === undefined) return match
  let seen = stampOf(file)
  return (presented) => {
    const now = stampOf(file)
    if (now !== seen) {
      seen = now
      const token = readToken(file)
      if (token !== null) match = tokenMatcher(token)
    }
    return match(presented)
  }
}

function readToken(file: string): string | null {
  try {
    const t = readFileSync(file, 'utf8').trim()
    return t.length >= MIN_TOKEN_CHARS ? t : null
  } catch {
    return null // removed: the gateway makes a new one at its next start; until then the last one holds
  }
}

function stampOf(file: string): string {
  try {
    const s = statSync(file, { bigint: true })
    return `${s.ino}:${s.mtimeNs}:${s.size}`
  } catch {
    return 'missing'
  }
}
