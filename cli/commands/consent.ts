import { existsSync, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { group, print, type Command } from '../command.ts'
import { parseCli, requireOpt, stringOpt, choiceOpt } from '../args.ts'
import { CliError, UsageError, invalidOn } from '../errors.ts'
import { readEd25519KeyPair } from '../key-arg.ts'
import { openLedgerOrFail } from './ledger.ts'
import { toHex, fromHex } from '../../protocol/portable/bytes.ts'

const readPatientKey = (path: string) => readEd25519KeyPair(path, '--key')

/** ms since epoch from an integer or an ISO date. */
function timeArg(name: string, raw: string): number {
  const v = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`--${name} expects ms since epoch or an ISO date, got '${raw}'`)
  return v
}

const sign: Command = {
  name: 'sign',
  summary: "Create a grant or revoke record signed with the patient's key",
  usage: `Usage: mhealth consent sign --key PATIENT_KEY --action grant|revoke --clinician ID --scope SCOPE
                            [--expires TIME] [--issued TIME] [--out FILE]

Writes a consent record (deterministic CBOR, Ed25519-signed by the patient key file) to
FILE, or as hex to stdout; 'mhealth consent post' sends either to a gateway. SCOPE '*' means all scopes. TIME is ms since epoch or an ISO
date; --expires defaults to never, --issued to now (it must increase per patient).`,
  async run(argv, io) {
    const p = parseCli(argv, { key: { type: 'string' }, action: { type: 'string' }, clinician: { type: 'string' }, scope: { type: 'string' }, expires: { type: 'string' }, issued: { type: 'string' }, out: { type: 'string' } })
    const key = await readPatientKey(requireOpt(p, 'key'))
    const action = choiceOpt(p, 'action', ['grant', 'revoke'] as const)
    const clinicianId = requireOpt(p, 'clinician')
    const scope = requireOpt(p, 'scope')
    const ex = stringOpt(p, 'expires')
    const is = stringOpt(p, 'issued')
    const { signConsent, patientIdFromPublicKey } = await import('../../ledger/consent.ts')
    const bytes = signConsent(key, { action, clinicianId, scope, expiresAt: ex ? timeArg('expires', ex) : 0, issuedAt: is ? timeArg('issued', is) : Date.now() })
    const out = stringOpt(p, 'out')
    if (out) {
      await writeFile(out, bytes)
      io.stderr.write(`wrote ${action} for patient ${patientIdFromPublicKey(key.publicKey)} to ${out}\n`)
    } else print(io, toHex(bytes))
    return 0
  },
}

/** A consent record file as `consent sign` writes it: raw CBOR (--out) or hex (stdout); - for standard input. */
async function readRecord(path: string): Promise<Uint8Array> {
  let raw: Buffer
  try {
    raw = path === '-' ? readFileSync(0) : await readFile(path)
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`)
  }
  const text = raw.toString('latin1').trim()
  return /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? fromHex(text) : new Uint8Array(raw)
}

/** The ledger in DIR, or in DIR/ledger when DIR is a gateway's data directory (as `mhealth ledger` does). */
function ledgerDirOf(dir: string): string {
  return !existsSync(join(dir, 'ledger.json')) && existsSync(join(dir, 'ledger', 'ledger.json')) ? join(dir, 'ledger') : dir
}

const show: Command = {
  name: 'show',
  summary: 'Check and print a consent record',
  usage: `Usage: mhealth consent show FILE

Checks the record's signature and prints it as JSON (FILE holds the raw bytes or hex).
Exit status 1 if the record is malformed or its signature is bad.`,
  async run(argv, io) {
    const p = parseCli(argv, {}, { min: 1, max: 1, names: ['FILE'] })
    const bytes = await readRecord(p.positionals[0])
    const { parseConsent, ConsentError } = await import('../../ledger/consent.ts')
    const r = await invalidOn(ConsentError, () => parseConsent(bytes))
    print(io, JSON.stringify({ action: r.action, patientId: r.patientId, patientKey: toHex(r.patientKey), clinicianId: r.clinicianId, scope: r.scope, expiresAt: r.expiresAt, issuedAt: r.issuedAt, signature: 'valid' }, null, 2))
    return 0
  },
}

const post: Command = {
  name: 'post',
  summary: 'Send a signed consent record to a gateway, which appends it to its ledger',
  usage: `Usage: mhealth consent post FILE --url URL

Checks the record (FILE from 'mhealth consent sign': raw bytes or hex; - for standard input)
and POSTs it to the gateway's /api/consent. The patient's signature is the authority: no
admin token is needed, but the patient must have a device registered at that gateway.
Prints the gateway's answer (patient, action, ledger leaf index) as JSON.`,
  async run(argv, io) {
    const p = parseCli(argv, { url: { type: 'string' } }, { min: 1, max: 1, names: ['FILE'] })
    const url = requireOpt(p, 'url')
    let target: URL
    try {
      target = new URL('/api/consent', url)
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('scheme')
    } catch {
      throw new UsageError(`--url: expected the gateway's HTTP URL like http://127.0.0.1:8081, got '${url}'`)
    }
    const bytes = await readRecord(p.positionals[0])
    // A bad record is refused here, with the parser's reason, rather than after a round trip.
    const { parseConsent, ConsentError } = await import('../../ledger/consent.ts')
    await invalidOn(ConsentError, () => parseConsent(bytes))
    let res: Response
    try {
      res = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: Buffer.from(bytes) })
    } catch (e) {
      const err = e as Error & { cause?: Error }
      throw new CliError(`cannot reach the gateway at ${target.origin}: ${err.cause?.message ?? err.message}`)
    }
    const text = await res.text()
    let j: { error?: unknown } | undefined
    try {
      j = JSON.parse(text) as { error?: unknown }
    } catch {
      j = undefined
    }
    if (!res.ok) throw new CliError(`the gateway refused the record (HTTP ${res.status}): ${typeof j?.error === 'string' ? j.error : text.slice(0, 300) || res.statusText}`)
    if (!j) throw new CliError(`${target.origin} does not answer like an mhealth gateway: ${text.slice(0, 200)}`)
    print(io, JSON.stringify(j))
    return 0
  },
}

const list: Command = {
  name: 'list',
  summary: "List a patient's current grants from a ledger",
  usage: `Usage: mhealth consent list --data DIR --patient PATIENT_ID [--json]

Reads the ledger in DIR (read-only) and prints the patient's current grants. DIR is a
ledger directory or a gateway data directory (its ledger/ is used).`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, patient: { type: 'string' }, json: { type: 'boolean' } })
    const dir = ledgerDirOf(requireOpt(p, 'data'))
    const patient = requireOpt(p, 'patient')
    const l = await openLedgerOrFail(dir)
    const grants = l.consent.list(patient)
    await l.close()
    if (p.values.json) print(io, JSON.stringify(grants, null, 2))
    else if (!grants.length) print(io, `no grants for ${patient}`)
    else for (const g of grants) print(io, `${g.clinicianId}  ${g.scope}  ${g.expiresAt ? 'until ' + new Date(g.expiresAt).toISOString() : 'no expiry'}  (leaf ${g.leafIndex})`)
    return 0
  },
}

const id: Command = {
  name: 'id',
  summary: "Print the patient ID derived from a patient's key",
  usage: `Usage: mhealth consent id --key PATIENT_KEY

Prints "pt-" + base32 of the first 10 bytes of SHA-256(public key).`,
  async run(argv, io) {
    const p = parseCli(argv, { key: { type: 'string' } })
    const key = await readPatientKey(requireOpt(p, 'key'))
    const { patientIdFromPublicKey } = await import('../../ledger/consent.ts')
    print(io, patientIdFromPublicKey(key.publicKey))
    return 0
  },
}

export const command: Command = group('consent', 'Patient consent records: sign, check, post to a gateway, list', [sign, show, post, list, id])
