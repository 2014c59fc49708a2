/**
 * The device and user registry: one SQLite file (better-sqlite3) in WAL mode with
 * synchronous=FULL, so a committed registration, revocation or auth counter
 * survives a power cut (WAL with NORMAL may lose the last commits on power loss,
 * which would let a captured auth token be replayed after reboot).
 * Why SQLite over LevelDB: transactions give us the compare-and-set that makes
 * auth counters strictly increasing even when two gateway processes share the
 * file (WAL allows concurrent readers and serialises writers across processes),
 * and an operator can inspect it with the sqlite3 shell.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { scryptSync, scrypt, randomBytes, timingSafeEqual } from 'node:crypto'
import type { DeviceView } from '../protocol/node/admin-client.ts'

export type Profile = 'se' | 'bare'
/**
 * 'deleted' is a tombstone: the row and its key stay (its frames in the ledger still
 * verify, and its ID cannot be taken by another key), stored as status 'revoked' with
 * deleted_ms set, so any process that predates deletion refuses it as revoked.
 */
export type DeviceStatus = 'active' | 'revoked' | 'deleted'
export type Role = 'clinician' | 'admin'

/**
 * A registered device: what the admin API shows of it (protocol/node/admin-client.ts's
 * DeviceView, the one list of its fields) plus its keys as bytes, the secret included.
 */
export interface Device extends Omit<DeviceView, 'publicKey'> {
  profile: Profile
  status: DeviceStatus
  /** SE profile: uncompressed P-256 public key (65 bytes). */
  publicKey: Uint8Array | null
  /** Bare profile: HMAC-SHA256 secret (32 bytes). */
  secret: Uint8Array | null
}

export interface User {
  username: string
  role: Role
  createdMs: number
}

export class RegistryError extends Error {
  override name = 'RegistryError'
  constructor(message: string, readonly code: 'exists' | 'not-found' | 'invalid' | 'busy') {
    super(message)
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY,
  profile TEXT NOT NULL CHECK (profile IN ('se','bare')),
  public_key BLOB,
  secret BLOB,
  patient TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active','revoked')),
  created_ms INTEGER NOT NULL,
  first_seen_ms INTEGER,
  last_seen_ms INTEGER,
  last_seq INTEGER,
  last_auth_counter INTEGER NOT NULL DEFAULT -1,
  revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS device_events (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  action TEXT NOT NULL,
  detail TEXT
);
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('clinician','admin')),
  password_hash TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
`

interface DeviceRow {
  id: string
  profile: Profile
  public_key: Buffer | null
  secret: Buffer | null
  patient: string
  status: DeviceStatus
  created_ms: number
  first_seen_ms: number | null
  last_seen_ms: number | null
  last_seq: number | null
  last_auth_counter: number
  revoked_ms: number | null
  changed_ms: number | null
  deleted_ms: number | null
}

/** Columns added after the first release: added in place to an older registry file. */
const ADDED_COLUMNS: Array<[name: string, decl: string]> = [
  // when a lifecycle change (revoke, move, reactivate, delete) was last written, by any process
  ['changed_ms', 'INTEGER'],
  ['deleted_ms', 'INTEGER'],
]

/** A stretch of time (board clock, ms; ends open) during which a device's frames were one patient's. */
export interface PatientSpan {
  deviceId: string
  patient: string
  /** -Infinity: since the device was registered. */
  fromMs: number
  /** Infinity: until now. Exclusive. */
  toMs: number
}

/**
 * Whose a device's frames were, over time, from its moves: frames carry the device only, so
 * after a move the frames before it stay the old patient's (their history, their consent).
 */
export function patientSpans(d: { id: string; patient: string }, events: readonly DeviceEvent[]): PatientSpan[] {
  const moves = events.filter((e) => e.action === 'moved' && e.detail && typeof e.detail.from === 'string' && typeof e.detail.to === 'string')
  if (moves.length === 0) return [{ deviceId: d.id, patient: d.patient, fromMs: -Infinity, toMs: Infinity }]
  const out: PatientSpan[] = []
  let from = -Infinity
  for (const m of moves) {
    out.push({ deviceId: d.id, patient: m.detail!.from as string, fromMs: from, toMs: m.atMs })
    from = m.atMs
  }
  out.push({ deviceId: d.id, patient: d.patient, fromMs: from, toMs: Infinity })
  return out.filter((s) => s.toMs > s.fromMs)
}

/** One lifecycle change of a device, as the registry's device_events table keeps it. */
export interface DeviceEvent {
  device: string
  atMs: number
  action: 'registered' | 'revoked' | 'moved' | 'reactivated' | 'deleted'
  detail: Record<string, unknown> | null
}

const toDevice = (r: DeviceRow): Device => ({
  id: r.id,
  profile: r.profile,
  publicKey: r.public_key ? new Uint8Array(r.public_key) : null,
  secret: r.secret ? new Uint8Array(r.secret) : null,
  patient: r.patient,
  status: r.deleted_ms !== null ? 'deleted' : r.status,
  createdMs: r.created_ms,
  firstSeenMs: r.first_seen_ms,
  lastSeenMs: r.last_seen_ms,
  lastSeq: r.last_seq,
  lastAuthCounter: r.last_auth_counter,
  revokedMs: r.revoked_ms,
})

/** Device as shown by the CLI and admin API: keys as hex, the secret never shown. */
export function publicView(d: Device): DeviceView {
  return {
    id: d.id,
    profile: d.profile,
    publicKey: d.publicKey ? Buffer.from(d.publicKey).toString('hex') : undefined,
    patient: d.patient,
    status: d.status,
    createdMs: d.createdMs,
    firstSeenMs: d.firstSeenMs,
    lastSeenMs: d.lastSeenMs,
    lastSeq: d.lastSeq,
    lastAuthCounter: d.lastAuthCounter,
    revokedMs: d.revokedMs,
  }
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 }

export function hashPassword(password: string): string {
  const salt = randomBytes(16)
  const dk = scryptSync(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p })
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('hex')}$${dk.toString('hex')}`
}

/** Async (libuv thread pool) so a login never blocks the broker's event loop. */
export function checkPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return Promise.resolve(false)
  const [, n, r, p, saltHex, dkHex] = parts as [string, string, string, string, string, string]
  const want = Buffer.from(dkHex, 'hex')
  return new Promise((resolve) => {
    scrypt(password, Buffer.from(saltHex, 'hex'), want.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 }, (err, got) => {
      resolve(!err && got.length === want.length && timingSafeEqual(want, got))
    })
  })
}

let dummyHash: string | undefined
const DUMMY_HASH_OF = (): string => (dummyHash ??= hashPassword('not-a-real-password'))

const LOGIN_CONCURRENCY = 2
const LOGIN_QUEUE = 64

function checkRole(role: string): void {
  if (role !== 'clinician' && role !== 'admin') throw new RegistryError(`role: expected clinician or admin, got '${role}'`, 'invalid')
}

function checkNewPassword(password: string): void {
  if (typeof password !== 'string') throw new RegistryError(`password: expected a string, got ${typeof password}`, 'invalid')
  if (password.length < 8) throw new RegistryError(`password: expected at least 8 characters, got ${password.length}`, 'invalid')
}

const notFoundUser = (username: string): RegistryError => new RegistryError(`user ${username} does not exist`, 'not-found')

const PATIENT_RE = /^[A-Za-z0-9._-]{1,64}$/
const USER_RE = /^[a-z0-9._-]{1,64}$/

export class DeviceRegistry {
  readonly db: Database.Database
  private readonly stmts
  /** Last accepted seq per device, flushed in batches (frames are far more frequent than we want fsyncs). */
  private pendingSeq = new Map<string, { seq: number; seenMs: number }>()

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true })
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.pragma('busy_timeout = 5000')
    this.db.exec(SCHEMA)
    const have = new Set((this.db.prepare('PRAGMA table_info(devices)').all() as Array<{ name: string }>).map((c) => c.name))
    for (const [name, decl] of ADDED_COLUMNS) if (!have.has(name)) this.db.exec(`ALTER TABLE devices ADD COLUMN ${name} ${decl}`)
    const db = this.db
    this.stmts = {
      get: db.prepare('SELECT * FROM devices WHERE id = ?'),
      list: db.prepare('SELECT * FROM devices ORDER BY created_ms, id'),
      insert: db.prepare(
        'INSERT INTO devices (id, profile, public_key, secret, patient, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      revoke: db.prepare("UPDATE devices SET status = 'revoked', revoked_ms = ?, changed_ms = ? WHERE id = ? AND status = 'active'"),
      move: db.prepare('UPDATE devices SET patient = ?, changed_ms = ? WHERE id = ? AND deleted_ms IS NULL'),
      reactivate: db.prepare("UPDATE devices SET status = 'active', revoked_ms = NULL, changed_ms = ? WHERE id = ? AND status = 'revoked' AND deleted_ms IS NULL"),
      delete: db.prepare("UPDATE devices SET status = 'revoked', revoked_ms = COALESCE(revoked_ms, ?), deleted_ms = ?, changed_ms = ? WHERE id = ? AND deleted_ms IS NULL"),
      changedSince: db.prepare('SELECT id FROM devices WHERE changed_ms >= ?'),
      addEvent: db.prepare('INSERT INTO device_events (device, at_ms, action, detail) VALUES (?, ?, ?, ?)'),
      events: db.prepare('SELECT device, at_ms, action, detail FROM device_events WHERE device = ? ORDER BY n'),
      authCas: db.prepare(
        'UPDATE devices SET last_auth_counter = ?, last_seen_ms = ?, first_seen_ms = COALESCE(first_seen_ms, ?) WHERE id = ? AND last_auth_counter < ?',
      ),
      seq: db.prepare('UPDATE devices SET last_seq = MAX(COALESCE(last_seq, -1), ?), last_seen_ms = MAX(COALESCE(last_seen_ms, 0), ?) WHERE id = ?'),
      revokedSince: db.prepare("SELECT id FROM devices WHERE status = 'revoked' AND revoked_ms >= ?"),
      countActive: db.prepare("SELECT COUNT(*) AS n FROM devices WHERE status = 'active'"),
      hasPatient: db.prepare('SELECT 1 AS x FROM devices WHERE patient = ? LIMIT 1'),
      getUser: db.prepare('SELECT * FROM users WHERE username = ?'),
      insertUser: db.prepare('INSERT INTO users (username, role, password_hash, created_ms) VALUES (?, ?, ?, ?)'),
      listUsers: db.prepare('SELECT username, role, created_ms FROM users ORDER BY username'),
      deleteUser: db.prepare('DELETE FROM users WHERE username = ?'),
      setPassword: db.prepare('UPDATE users SET password_hash = ? WHERE username = ?'),
      setRole: db.prepare('UPDATE users SET role = ? WHERE username = ?'),
      userStamps: db.prepare('SELECT username, role, password_hash FROM users'),
    }
  }

  getDevice(id: string): Device | null {
    this.flushSeq()
    const r = this.stmts.get.get(id) as DeviceRow | undefined
    return r ? toDevice(r) : null
  }

  listDevices(): Device[] {
    this.flushSeq()
    return (this.stmts.list.all() as DeviceRow[]).map(toDevice)
  }

  /** IDs revoked at or after `ms` (by any process sharing the file). */
  revokedSince(ms: number): string[] {
    return (this.stmts.revokedSince.all(ms) as Array<{ id: string }>).map((r) => r.id)
  }

  /** True when some device (active or not) is registered for this patient. */
  hasPatient(patient: string): boolean {
    return this.stmts.hasPatient.get(patient) !== undefined
  }

  countActive(): number {
    return (this.stmts.countActive.get() as { n: number }).n
  }

  register(d: { id: string; profile: Profile; publicKey?: Uint8Array; secret?: Uint8Array; patient: string }, nowMs = Date.now()): Device {
    if (d.profile === 'se' && (!d.publicKey || d.publicKey.length !== 65 || d.publicKey[0] !== 4))
      throw new RegistryError(`se device: expected an uncompressed P-256 public key (65 bytes, 0x04...), got ${d.publicKey ? d.publicKey.length + ' bytes' : 'none'}`, 'invalid')
    if (d.profile === 'bare' && (!d.secret || d.secret.length !== 32))
      throw new RegistryError(`bare device: expected a 32-byte HMAC secret, got ${d.secret ? d.secret.length + ' bytes' : 'none'}`, 'invalid')
    if (!PATIENT_RE.test(d.patient)) throw new RegistryError(`patient: expected 1-64 characters [A-Za-z0-9._-], got '${d.patient}'`, 'invalid')
    try {
      this.db.transaction(() => {
        this.stmts.insert.run(d.id, d.profile, d.publicKey ? Buffer.from(d.publicKey) : null, d.secret ? Buffer.from(d.secret) : null, d.patient, 'active', nowMs)
        this.event(d.id, nowMs, 'registered', { patient: d.patient, profile: d.profile })
      })()
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw err
      // The tombstone keeps the key its ledger frames verify with; a new key under the same
      // ID would make those frames look forged (or another board's look like this one's).
      if (this.getDevice(d.id)?.status === 'deleted')
        throw new RegistryError(`device ${d.id} was deleted; its ID stays retired (its frames in the ledger are verified with the key kept for it), so it cannot be registered again: give the board a new ID`, 'exists')
      throw new RegistryError(`device ${d.id} is already registered`, 'exists')
    }
    return this.getDevice(d.id)!
  }

  private event(id: string, nowMs: number, action: DeviceEvent['action'], detail: Record<string, unknown> | null): void {
    this.stmts.addEvent.run(id, nowMs, action, detail ? JSON.stringify(detail) : null)
  }

  /** Lifecycle changes of one device, oldest first (whichever process made them). */
  deviceEvents(id: string): DeviceEvent[] {
    return (this.stmts.events.all(id) as Array<{ device: string; at_ms: number; action: DeviceEvent['action']; detail: string | null }>)
      .map((r) => ({ device: r.device, atMs: r.at_ms, action: r.action, detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null }))
  }

  /** IDs whose lifecycle changed at or after `ms` (revoke, move, reactivate, delete; any process). */
  changedSince(ms: number): string[] {
    return (this.stmts.changedSince.all(ms) as Array<{ id: string }>).map((r) => r.id)
  }

  private mustGet(id: string): Device {
    const d = this.getDevice(id)
    if (!d) throw new RegistryError(`device ${id} is not registered`, 'not-found')
    return d
  }

  /**
   * Assigns the device to another patient: its next frames go to that patient's feed, under
   * that patient's consent. Frames already stored keep no patient (the ledger records the
   * device only). Returns the patient it had. A deleted device cannot be moved.
   */
  move(id: string, patient: string, nowMs = Date.now()): { from: string; to: string; changed: boolean } {
    if (!PATIENT_RE.test(patient)) throw new RegistryError(`patient: expected 1-64 characters [A-Za-z0-9._-], got '${patient}'`, 'invalid')
    return this.db.transaction(() => {
      const d = this.mustGet(id)
      if (d.status === 'deleted') throw new RegistryError(`device ${id} was deleted; a deleted device cannot be moved`, 'invalid')
      if (d.patient === patient) return { from: d.patient, to: patient, changed: false }
      this.stmts.move.run(patient, nowMs, id)
      this.event(id, nowMs, 'moved', { from: d.patient, to: patient })
      return { from: d.patient, to: patient, changed: true }
    })()
  }

  /** Lets a revoked device connect again; false when it was active already. A deleted one is refused. */
  reactivate(id: string, nowMs = Date.now()): boolean {
    return this.db.transaction(() => {
      const d = this.mustGet(id)
      if (d.status === 'deleted') throw new RegistryError(`device ${id} was deleted; a deleted device cannot be reactivated (register the board under a new ID)`, 'invalid')
      if (this.stmts.reactivate.run(nowMs, id).changes !== 1) return false
      this.event(id, nowMs, 'reactivated', null)
      return true
    })()
  }

  /**
   * Retires a device for good: refused at CONNECT like a revoked one, and not reactivatable.
   * The row stays as a tombstone with its key (its frames in the ledger still verify with it,
   * and no other key can take its ID). Returns false when it was deleted already.
   */
  delete(id: string, nowMs = Date.now()): boolean {
    return this.db.transaction(() => {
      this.mustGet(id)
      if (this.stmts.delete.run(nowMs, nowMs, nowMs, id).changes !== 1) return false
      this.event(id, nowMs, 'deleted', null)
      return true
    })()
  }

  /** Marks a device revoked; returns false when it was already revoked. Throws when unknown. */
  revoke(id: string, nowMs = Date.now()): boolean {
    return this.db.transaction(() => {
      const changed = this.stmts.revoke.run(nowMs, nowMs, id).changes === 1
      if (!changed && !this.getDevice(id)) throw new RegistryError(`device ${id} is not registered`, 'not-found')
      if (changed) this.event(id, nowMs, 'revoked', null)
      return changed
    })()
  }

  /**
   * Records an auth token's counter if and only if it is greater than the last one
   * seen (compare-and-set in one statement, durable before CONNACK). False = replay.
   */
  acceptAuthCounter(id: string, counter: number, nowMs = Date.now()): boolean {
    return this.stmts.authCas.run(counter, nowMs, nowMs, id, counter).changes === 1
  }

  noteSeq(id: string, seq: number, nowMs = Date.now()): void {
    const cur = this.pendingSeq.get(id)
    if (!cur || seq > cur.seq) this.pendingSeq.set(id, { seq, seenMs: nowMs })
    else cur.seenMs = nowMs
  }

  /** Writes batched last-seq/last-seen values in one transaction. */
  flushSeq(): void {
    if (this.pendingSeq.size === 0) return
    const batch = this.pendingSeq
    this.pendingSeq = new Map()
    try {
      this.db.transaction(() => {
        for (const [id, v] of batch) this.stmts.seq.run(v.seq, v.seenMs, id)
      })()
    } catch (err) {
      // Not written (SQLITE_FULL, a busy file): keep the batch for the next flush, merged
      // with what came meanwhile, so a full disk delays these values but does not lose them.
      for (const [id, v] of batch) {
        const cur = this.pendingSeq.get(id)
        if (!cur) this.pendingSeq.set(id, v)
        else this.pendingSeq.set(id, { seq: Math.max(cur.seq, v.seq), seenMs: Math.max(cur.seenMs, v.seenMs) })
      }
      throw err
    }
  }

  addUser(username: string, role: Role, password: string, nowMs = Date.now()): User {
    if (!USER_RE.test(username)) throw new RegistryError(`username: expected 1-64 characters [a-z0-9._-], got '${username}'`, 'invalid')
    checkRole(role)
    checkNewPassword(password)
    try {
      this.stmts.insertUser.run(username, role, hashPassword(password), nowMs)
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new RegistryError(`user ${username} already exists`, 'exists')
      throw err
    }
    return { username, role, createdMs: nowMs }
  }

  /**
   * Password checks run scrypt on libuv's thread pool, which the ledger's fsyncs also
   * use: at most `LOGIN_CONCURRENCY` run at once and at most `LOGIN_QUEUE` wait, so a
   * login flood cannot delay PUBACKs. Past that the check fails fast with code 'busy'.
   */
  private loginsRunning = 0
  private loginQueue: Array<() => void> = []

  /** The user when the password matches, else null (same answer for unknown user and wrong password). */
  async checkUser(username: string, password: string): Promise<User | null> {
    if (this.loginsRunning >= LOGIN_CONCURRENCY) {
      if (this.loginQueue.length >= LOGIN_QUEUE) throw new RegistryError('too many logins in progress; try again shortly', 'busy')
      await new Promise<void>((r) => this.loginQueue.push(r))
    } else this.loginsRunning++
    try {
      return await this.checkUserNow(username, password)
    } finally {
      const next = this.loginQueue.shift()
      if (next) next() // hand the slot over
      else this.loginsRunning--
    }
  }

  private async checkUserNow(username: string, password: string): Promise<User | null> {
    const r = this.stmts.getUser.get(username) as { username: string; role: Role; password_hash: string; created_ms: number } | undefined
    // Unknown users still pay for one scrypt, so timing does not reveal which names exist.
    const ok = await checkPassword(password, r ? r.password_hash : DUMMY_HASH_OF())
    return r && ok ? { username: r.username, role: r.role, createdMs: r.created_ms } : null
  }

  /** Removes a user; throws 'not-found' when there is none. Their sessions are the caller's to end. */
  deleteUser(username: string): void {
    if (this.stmts.deleteUser.run(username).changes !== 1) throw notFoundUser(username)
  }

  /** Replaces a user's password (a fresh salt, so the stored hash always changes). */
  setPassword(username: string, password: string): void {
    checkNewPassword(password)
    if (this.stmts.setPassword.run(hashPassword(password), username).changes !== 1) throw notFoundUser(username)
  }

  /** Changes a user's role; returns the user as now stored. */
  setRole(username: string, role: Role): User {
    checkRole(role)
    if (this.stmts.setRole.run(role, username).changes !== 1) throw notFoundUser(username)
    const r = this.stmts.getUser.get(username) as { username: string; role: Role; created_ms: number }
    return { username: r.username, role: r.role, createdMs: r.created_ms }
  }

  /**
   * One string per user that changes whenever the user is deleted, their role changes or their
   * password is set (whichever process did it): what a gateway compares to end stale sessions.
   */
  userStamps(): Map<string, string> {
    const rows = this.stmts.userStamps.all() as Array<{ username: string; role: Role; password_hash: string }>
    return new Map(rows.map((r) => [r.username, `${r.role}$${r.password_hash}`]))
  }

  listUsers(): User[] {
    return (this.stmts.listUsers.all() as Array<{ username: string; role: Role; created_ms: number }>).map((r) => ({ username: r.username, role: r.role, createdMs: r.created_ms }))
  }

  close(): void {
    try {
      this.flushSeq()
    } finally {
      // last-seq values are bookkeeping (the ledger holds the frames): a full disk must not keep the file open
      this.db.close()
    }
  }
}
