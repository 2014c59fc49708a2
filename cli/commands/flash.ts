import { print, type Command, type CliIO } from '../command.ts'
import { parseCli, stringOpt } from '../args.ts'
import { CliError, UsageError } from '../errors.ts'
import { DEFAULTS } from '../../firmware/config.ts'
import { ReplLink, LinkError, boardOptions, boardTarget, withBoard } from '../board-link.ts'

// ------------------------------------------------------------------ staged upload

/*
 * Why the upload is staged. Espruino's Storage has no rename, and writing a file that exists
 * first erases the old one, then writes the new header, then the data (jsfCreateFile and
 * jsfWriteFile in src/jsflash.c): a .bootcde written in place is torn for the whole upload,
 * and a board that loses power, or a link that garbles bytes, during it boots a SyntaxError.
 * So, with TARGET the file to write (.bootcde):
 *   0. a TARGET torn by an earlier flash is put back from TARGET.old, or erased (repair);
 *   1. the bundle goes to TARGET.new (never booted: Espruino boots only .boot0-3 and .bootcde)
 *      and is verified there by a SHA-256 the board computes;
 *   2. the previous firmware is copied to TARGET.old on the board, and that copy verified;
 *   3. in one REPL line, which the board completes whatever happens to the link: TARGET.new
 *      is copied over TARGET and TARGET verified; on a mismatch or error TARGET.old is copied
 *      back (or, with no previous firmware, TARGET erased); the staging files are removed.
 * A failure in 1 or 2 leaves TARGET untouched and removes TARGET.new. What a power loss leaves:
 *   - in 1 or 2: TARGET untouched, the old firmware boots; a torn TARGET.new or TARGET.old is
 *     never run, fails its hash or marker check, and the next flash replaces it;
 *   - in 0 or 3: TARGET missing (no firmware runs) or torn (a SyntaxError at boot). That window
 *     is one on-board copy of one file (a fraction of a second of flash writes on an ESP32,
 *     against tens of seconds of serial upload), and the verified copy of the previous firmware
 *     in TARGET.old survives it: the next `mhealth flash` sees the torn TARGET through its
 *     marker and repairs it first (step 0), so that flash starts, and fails if it must, from
 *     the previous firmware. Closing the window entirely needs a loader in .bootcde that boots
 *     one of two verified slots: a change to how the firmware boots, not to this tool.
 * Copies go through RAM in 1 KB pieces (E.toUint8Array): a Storage.write handed a string that
 * still points into flash could read moved bytes if that write compacts Storage.
 */

/** Storage names beside `target`: the staged upload and the copy of the previous firmware. */
export function stagingNames(target: string): { staged: string; backup: string } {
  return { staged: `${target}.new`, backup: `${target}.old` }
}

/** Longest --file name: Espruino names have at most 28 characters, and TARGET.new needs 4 more. */
export const MAX_TARGET_NAME = 24

export const CHUNK = 768

/** What the board holds under one name. */
export interface StoredFile {
  size: number
  /** Hex SHA-256 of the whole file, computed on the board. */
  sha256: string
  /** Present when the file starts with a bundle marker: its version, and whether the body still matches it. */
  firmware?: { version: string; intact: boolean }
}

export interface BoardFiles {
  target: StoredFile | null
  staged: StoredFile | null
  backup: StoredFile | null
}

/** The firmware to fall back on: where it is on the board now, and its hash. */
export interface Previous {
  from: string
  sha256: string
  /** FW_VERSION, or undefined for code that is not an mhealth bundle. */
  version?: string
}

const b64hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex')
const hexb64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64')

/** Board-side: `h(name)` is the base64 SHA-256 of a Storage file, "" when it is missing. */
const HASH_FN = 'function h(n){var s=S.read(n);return s===undefined?"":btoa(E.toString(new Uint8Array(C.SHA256(s))))}'
/** Board-side: `cp(a, b)` copies Storage file a to b through RAM, 1 KB at a time. */
const COPY_FN = 'function cp(a,b){var z=S.read(a).length,o=0,k;S.erase(b);for(;o<z;o+=1024){k=E.toUint8Array(S.read(a,o,Math.min(1024,z-o)));if(o)S.write(b,k,o);else S.write(b,k,0,z)}}'
const STORAGE_ARGS = 'require("Storage"),require("crypto")'

/** Reads what the board holds under `target` and its two staging names. */
export async function inspectBoard(link: ReplLink, target: string): Promise<BoardFiles> {
  const { staged, backup } = stagingNames(target)
  const { parseMarker, MARKER_PREFIX } = await import('../../firmware/build/bundle.ts')
  const expr =
    `(function(S,C){function d(s){return btoa(E.toString(new Uint8Array(C.SHA256(s))))}` +
    `function f(n){var s=S.read(n);if(s===undefined)return null;var r={size:s.length,sha:d(s)},i=s.indexOf("\\n");` +
    `if(i>0&&i<300&&s.substr(0,${MARKER_PREFIX.length})===${JSON.stringify(MARKER_PREFIX)}){r.mark=s.substr(0,i);r.body=d(i+1<s.length?S.read(n,i+1):"")}return r}` +
    `return {t:f(${JSON.stringify(target)}),n:f(${JSON.stringify(staged)}),o:f(${JSON.stringify(backup)})}})(${STORAGE_ARGS})`
  type Raw = { size: number; sha: string; mark?: string; body?: string } | null
  const raw = (await link.call(expr, 20000, 'reading Storage')) as { t: Raw; n: Raw; o: Raw }
  const file = (r: Raw): StoredFile | null => {
    if (!r) return null
    const out: StoredFile = { size: r.size, sha256: b64hex(r.sha) }
    const m = r.mark !== undefined ? parseMarker(r.mark) : undefined
    if (m) out.firmware = { version: m.version, intact: r.body !== undefined && b64hex(r.body) === m.bodySha256 }
    return out
  }
  return { target: file(raw.t), staged: file(raw.n), backup: file(raw.o) }
}

/**
 * Which firmware a failed flash must leave in place. An intact bundle in `target` wins; a
 * damaged one (a power loss tore an earlier flash's copy) gives way to the verified copy an
 * interrupted flash left in TARGET.old; code that is not an mhealth bundle is kept as it is,
 * since nothing tells whether it is whole. A damaged bundle with nothing to replace it is no
 * firmware worth keeping (it boots a SyntaxError): null, and repair() erases it.
 */
export function choosePrevious(target: string, f: BoardFiles): { previous: Previous | null; notes: string[] } {
  const { backup } = stagingNames(target)
  const notes: string[] = []
  const as = (from: string, s: StoredFile): Previous => ({ from, sha256: s.sha256, version: s.firmware?.version })
  const t = f.target
  const o = f.backup
  if (t && (!t.firmware || t.firmware.intact)) {
    if (!t.firmware && o?.firmware?.intact) notes.push(`'${backup}' holds an mhealth bundle from an interrupted flash, but '${target}' is other code: that code counts as the previous firmware`)
    return { previous: as(target, t), notes }
  }
  if (t) notes.push(`'${target}' on the board is a damaged bundle (${t.firmware!.version}: its body does not match its marker; an earlier flash was cut short)`)
  else if (o) notes.push(`'${target}' is missing (an earlier flash was cut short)`)
  if (o && (!o.firmware || o.firmware.intact)) {
    // A TARGET.old that is not our bundle was verified against the original before the swap began.
    notes.push(`the previous firmware${o.firmware ? ` (${o.firmware.version})` : ''} is in '${backup}', kept by that flash`)
    return { previous: as(backup, o), notes }
  }
  if (t) notes.push(`no intact copy to fall back on: '${target}' is erased before the upload (it could only boot a SyntaxError)`)
  return { previous: null, notes }
}

/** A flash that did not complete: what the board holds now, in words, and whether the previous firmware runs. */
export class FlashFailed extends CliError {
  constructor(message: string, readonly previousInPlace: boolean, code = 1) {
    super(message, code)
  }
}

function describePrevious(target: string, p: Previous | null): string {
  if (!p) return `the board has no firmware in '${target}'`
  return `'${target}' holds the previous firmware (${p.version ?? 'code that is not an mhealth bundle'})`
}

/**
 * Uploads `code` to TARGET.new in base64 chunks (so any byte survives the REPL), checking
 * each write, then compares a SHA-256 computed on the board. Throws with what went wrong; the
 * caller removes TARGET.new. TARGET itself is never touched.
 */
async function uploadStaged(link: ReplLink, staged: string, code: string, sha256: string, progress: (done: number, total: number) => void, interrupted: () => boolean): Promise<void> {
  const bytes = Buffer.from(code, 'latin1')
  const total = bytes.length
  const name = JSON.stringify(staged)
  await link.call(`require("Storage").erase(${name})`, 5000, `erase ${staged}`)
  for (let off = 0; off < total; off += CHUNK) {
    if (interrupted()) throw new CliError(`interrupted at byte ${off} of ${total}`, 130)
    const b64 = bytes.subarray(off, off + CHUNK).toString('base64')
    const args = off === 0 ? `,0,${total}` : `,${off}`
    let ok: unknown
    let why = 'the board answered false'
    try {
      ok = await link.call(`require("Storage").write(${name},atob("${b64}")${args})`, 10000, `write at ${off}`, { watchRestart: true })
    } catch (e) {
      // A board that stops answering or restarts mid-upload is a different failure: keep its message.
      if (e instanceof LinkError) throw e
      why = (e as Error).message.replace(/^board error in write at \d+: (Error: )?/, '')
    }
    if (ok !== true) {
      const free = await link.call('require("Storage").getFree()').catch(() => '?')
      throw new CliError(`write to '${staged}' failed at byte ${off} of ${total}: ${why} (Storage free: ${String(free)} bytes)`)
    }
    progress(Math.min(total, off + CHUNK), total)
  }
  const got = (await link.call(`(function(S,C){${HASH_FN}return h(${name})})(${STORAGE_ARGS})`, 10000, 'verify', { watchRestart: true })) as string
  if (got !== hexb64(sha256)) {
    throw new CliError(`verification failed: '${staged}' on the board has SHA-256 ${got ? b64hex(got) : '(missing)'}, expected ${sha256}: bytes were changed between this computer and the board's flash`)
  }
}

/**
 * Copies Storage file `from` to `to` on the board and checks `to` against `sha256`; a copy that
 * does not match is erased, and on success `thenErase` (if any) is. Resolves with "" or what
 * went wrong.
 */
async function copyOnBoard(link: ReplLink, from: string, to: string, sha256: string, thenErase: string | null): Promise<string> {
  const [f, t] = [JSON.stringify(from), JSON.stringify(to)]
  const after = thenErase ? `S.erase(${JSON.stringify(thenErase)});` : ''
  return (await link.call(
    `(function(S,C){${HASH_FN}${COPY_FN}var e="";try{cp(${f},${t})}catch(x){e=String(x)}if(h(${t})===${JSON.stringify(hexb64(sha256))}){${after}return ""}S.erase(${t});return e||"the copy did not match"})(${STORAGE_ARGS})`,
    30000, `copy ${from} to ${to}`, { watchRestart: true },
  )) as string
}

/** Copies the previous firmware to TARGET.old and checks the copy; throws (TARGET untouched) when it does not match. */
async function keepPrevious(link: ReplLink, target: string, p: Previous): Promise<void> {
  const { backup } = stagingNames(target)
  const r = await copyOnBoard(link, target, backup, p.sha256, null)
  if (r !== '') throw new CliError(`could not keep a copy of the previous firmware in '${backup}': ${r}`)
}

/**
 * Puts the board back in a plain state before anything new is written: a damaged TARGET is
 * replaced by the verified copy an interrupted flash left in TARGET.old, or erased when there
 * is none (it would only boot a SyntaxError). Returns where the previous firmware is now.
 */
async function repair(link: ReplLink, target: string, files: BoardFiles, previous: Previous | null, note: (s: string) => void): Promise<Previous | null> {
  const { backup } = stagingNames(target)
  if (!previous) {
    if (files.target) {
      await link.call(`require("Storage").erase(${JSON.stringify(target)})`, 5000, `erase ${target}`)
      note(`erased the damaged '${target}'`)
    }
    return null
  }
  if (previous.from === target) return previous
  const r = await copyOnBoard(link, backup, target, previous.sha256, backup)
  if (r !== '') throw new FlashFailed(`could not put the previous firmware back from '${backup}' into '${target}' (${r}): '${target}' is erased, '${backup}' kept; nothing new was written`, false)
  note(`put the previous firmware (${previous.version ?? 'code that is not an mhealth bundle'}) back into '${target}' from '${backup}'`)
  return { ...previous, from: target }
}

type SwapResult = { r: 'ok' } | { r: 'restored' | 'kept' | 'erased'; e: string; g: string }

/**
 * Step 3 as one REPL line: once sent, the board completes it whatever happens to the link.
 * `prevSha` is the previous firmware's hash (its verified copy is in TARGET.old), null if none.
 */
async function swapIn(link: ReplLink, target: string, size: number, sha256: string, prevSha: string | null): Promise<SwapResult> {
  const { staged, backup } = stagingNames(target)
  const [t, n, o] = [JSON.stringify(target), JSON.stringify(staged), JSON.stringify(backup)]
  const restore = prevSha
    ? `try{cp(${o},${t})}catch(x){}if(h(${t})===${JSON.stringify(hexb64(prevSha))}){S.erase(${o});return {r:"restored",e:e,g:g}}S.erase(${t});return {r:"kept",e:e,g:g}`
    : `S.erase(${t});return {r:"erased",e:e,g:g}`
  const expr =
    `(function(S,C){${HASH_FN}${COPY_FN}var e="",g;try{cp(${n},${t})}catch(x){e=String(x)}g=h(${t});` +
    `if(g===${JSON.stringify(hexb64(sha256))}){S.erase(${n});S.erase(${o});return {r:"ok"}}S.erase(${n});${restore}})(${STORAGE_ARGS})`
  const r = (await link.call(expr, 30000 + Math.ceil(size / 1024) * 500, `swap into ${target}`, { watchRestart: true })) as SwapResult
  if ('g' in r) r.g = r.g ? b64hex(r.g) : '(missing)'
  return r
}

/** What a completed flash reports. */
export interface FlashResult {
  sha256: string
  previous: Previous | null
  notes: string[]
}

/**
 * Flashes `code` (already checked as a bundle with hex SHA-256 `sha256`) into Storage `target`
 * so that a failure at any point leaves the previous firmware in place, or no firmware where
 * there was none (see the comment above). Throws FlashFailed saying what the board holds.
 */
export async function flashStaged(
  link: ReplLink,
  target: string,
  code: string,
  sha256: string,
  opts: { progress: (done: number, total: number) => void; note: (s: string) => void; interrupted: () => boolean },
): Promise<FlashResult> {
  const { staged, backup } = stagingNames(target)
  const files = await inspectBoard(link, target)
  const chosen = choosePrevious(target, files)
  for (const s of chosen.notes) opts.note(s)
  const previous = await repair(link, target, files, chosen.previous, opts.note)
  const notes = chosen.notes
  try {
    await uploadStaged(link, staged, code, sha256, opts.progress, opts.interrupted)
    if (opts.interrupted()) throw new CliError('interrupted after the upload', 130)
    // The previous firmware must be safe in TARGET.old before TARGET is overwritten.
    if (previous) await keepPrevious(link, target, previous)
  } catch (e) {
    // TARGET was not touched; the partial TARGET.new goes (a board that restarted still answers).
    const gone = e instanceof LinkError && e.why === 'closed'
    const erased = !gone && (await link.call(`require("Storage").erase(${JSON.stringify(staged)})`, 5000, `erase ${staged}`).then(() => true, () => false))
    const left = erased ? '' : `; '${staged}' may hold a partial copy, which is never run and which the next flash removes`
    throw new FlashFailed(`${(e as Error).message}. Nothing was changed: ${describePrevious(target, previous)}${left}`, previous !== null, e instanceof CliError && e.code === 130 ? 130 : 1)
  }
  let r: SwapResult
  try {
    r = await swapIn(link, target, code.length, sha256, previous?.sha256 ?? null)
  } catch (e) {
    const prev = previous ? `Unless that copy completed, the previous firmware is in '${backup}'; run` : 'Run'
    throw new FlashFailed(`${(e as Error).message}, while the board copied '${staged}' into '${target}'. ${prev} 'mhealth flash' again: it checks what the board holds and starts from there`, false)
  }
  if (r.r === 'ok') return { sha256, previous, notes }
  const why = `copying the verified upload into '${target}' went wrong on the board (${r.e || `it reads back with SHA-256 ${r.g}`})`
  if (r.r === 'restored') throw new FlashFailed(`${why}. The previous firmware (${previous!.version ?? 'code that is not an mhealth bundle'}) was put back in '${target}' and verified`, true)
  if (r.r === 'kept') throw new FlashFailed(`${why}, and putting the previous firmware back failed too: '${target}' was erased, so the board boots no firmware; the previous firmware is kept in '${backup}'`, false)
  throw new FlashFailed(`${why}. '${target}' was erased: the board had no firmware there before and has none now`, false)
}

export async function readBundle(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  try {
    return (await readFile(path)).toString('latin1')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`no bundle at ${path}; run 'mhealth firmware build' first or pass --bundle`)
    throw e
  }
}

/** Checks a bundle before anything is sent to the board; a file that is not our firmware is exit 1. */
async function checkBundle(code: string, label: string): Promise<{ version: string; sha256: string }> {
  const { checkFirmwareBundle, NotFirmwareError } = await import('../../firmware/build/bundle.ts')
  try {
    return checkFirmwareBundle(code)
  } catch (e) {
    if (e instanceof NotFirmwareError) throw new CliError(`refusing to flash ${label}: ${e.message}. Nothing was sent to the board`)
    throw e
  }
}

async function flash(argv: string[], io: CliIO): Promise<number> {
  const p = parseCli(argv, { ...boardOptions, bundle: { type: 'string' }, file: { type: 'string' }, 'no-start': { type: 'boolean' } })
  const board = boardTarget(p)
  const file = stringOpt(p, 'file') ?? '.bootcde'
  if (!new RegExp(`^[\\x21-\\x7e]{1,${MAX_TARGET_NAME}}$`).test(file)) throw new UsageError(`--file: expected a Storage name of 1..${MAX_TARGET_NAME} printable characters, got '${file}'`)
  const bundlePath = stringOpt(p, 'bundle')
  let code: string
  if (bundlePath) code = await readBundle(bundlePath)
  else {
    const { buildFirmware } = await import('./firmware.ts')
    code = (await buildFirmware()).code
  }
  const id = await checkBundle(code, bundlePath ?? 'the bundle just built')
  const start = !p.values['no-start']
  // Ctrl-C during the upload stops between chunks and cleans up; a second one quits at once.
  let interrupted = false
  const onSignal = (): void => {
    if (interrupted) process.exit(130)
    interrupted = true
    io.stderr.write('interrupted: stopping after the chunk in flight (Ctrl-C again to quit at once)\n')
  }
  process.on('SIGINT', onSignal)
  try {
    return await withBoard(board, async (link) => {
      // Stop the running firmware so its timers and sockets do not compete with the upload.
      await link.restart('reset()', 300)
      let last = -1
      let r: FlashResult
      try {
        r = await flashStaged(link, file, code, id.sha256, {
          progress: (done, total) => {
            const pct = Math.floor((100 * done) / total)
            if (pct >= last + 10 || done === total) {
              io.stderr.write(`uploading ${file}: ${done}/${total} bytes (${pct}%)\n`)
              last = pct
            }
          },
          note: (s) => io.stderr.write(`note: ${s}\n`),
          interrupted: () => interrupted,
        })
      } catch (e) {
        // reset() stopped what ran: a board whose firmware is still in place gets it back.
        if (e instanceof FlashFailed && e.previousInPlace && start) {
          link.send('load()')
          e.message += '; the board was restarted with it'
        }
        throw e
      }
      print(io, `wrote ${code.length} bytes (${id.version}) to Storage '${file}', verified (SHA-256 ${r.sha256})`)
      if (start) {
        link.send('load()')
        print(io, 'board restarted: the firmware runs from flash at every boot')
      }
      return 0
    })
  } finally {
    process.off('SIGINT', onSignal)
  }
}

export const command: Command = {
  name: 'flash',
  summary: 'upload the firmware bundle to a board over serial (or tcp://) and verify it',
  usage: [
    `Usage: mhealth flash --port PORT [--baud ${DEFAULTS.baud}] [--bundle dist/firmware.js] [--file .bootcde] [--no-start]`,
    '',
    "Writes the firmware into the board's Storage (.bootcde, run at every boot) through the",
    'Espruino REPL. Refuses, before touching the board, a file that is not JavaScript Espruino',
    "can run or lacks the '/* mhealth-firmware VERSION SHA256 */' line `mhealth firmware build`",
    'writes. The bundle goes to FILE.new in checked chunks and is verified there (SHA-256',
    'computed on the board); only then is the previous firmware copied to FILE.old and FILE.new',
    'copied over FILE on the board, and checked again. On any failure the previous firmware stays',
    '(or is put back) in FILE and the board is restarted with it; with no previous firmware, FILE',
    'is left absent, never half-written. A FILE torn by an earlier flash cut short (its body no',
    'longer matches its marker) is first put back from FILE.old. Ctrl-C stops the upload cleanly.',
    '',
    'Options:',
    '  --port PORT     serial device (/dev/ttyUSB0) or tcp://HOST:PORT',
    `  --baud N        serial speed (default ${DEFAULTS.baud})`,
    '  --bundle FILE   a bundle from `mhealth firmware build` (default: build now)',
    `  --file NAME     Storage file to write, up to ${MAX_TARGET_NAME} characters (default .bootcde)`,
    '  --no-start      do not restart the board afterwards (nor after a failure)',
  ].join('\n'),
  run: flash,
}
