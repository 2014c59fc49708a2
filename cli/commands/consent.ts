import { readFile, writeFile } from 'node:fs/promises'
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
FILE, or as hex to stdout. SCOPE '*' means all scopes. TIME is ms since epoch or an ISO
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

const show: Command = {
  name: 'show',
  summary: 'Check and print a consent record',
  usage: `Usage: mhealth consent show FILE

Checks the record's signature and prints it as JSON (FILE holds the raw bytes or hex).
Exit status 1 if the record is malformed or its signature is bad.`,
  async run(argv, io) {
    const p = parseCli(argv, {}, { min: 1, max: 1, names: ['FILE'] })
    let raw: Buffer
    try {
      raw = await readFile(p.positionals[0])
    } catch (e) {
      throw new CliError(`cannot read ${p.positionals[0]}: ${(e as Error).message}`)
    }
    const text = raw.toString('latin1').trim()
    const bytes = /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? fromHex(text) : new Uint8Array(raw)
    const { parseConsent, ConsentError } = await import('../../ledger/consent.ts')
    const r = await invalidOn(ConsentError, () => parseConsent(bytes))
    print(io, JSON.stringify({ action: r.action, patientId: r.patientId, patientKey: toHex(r.patientKey), clinicianId: r.clinicianId, scope: r.scope, expiresAt: r.expiresAt, issuedAt: r.issuedAt, signature: 'valid' }, null, 2))
    return 0
  },
}

const list: Command = {
  name: 'list',
  summary: "List a patient's current grants from a ledger",
  usage: `Usage: mhealth consent list --data DIR --patient PATIENT_ID [--json]

Reads the ledger in DIR (read-only) and prints the patient's current grants.`,
  async run(argv, io) {
    const p = parseCli(argv, { data: { type: 'string' }, patient: { type: 'string' }, json: { type: 'boolean' } })
    const dir = requireOpt(p, 'data')
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

export const command: Command = group('consent', 'Patient consent records: sign, check, list', [sign, show, list, id])
