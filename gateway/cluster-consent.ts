/**
 * Consent shared by every gateway of a cluster (`--redis`), so a clinician's access
 * does not depend on which gateway a patient posted a grant or a revocation to.
 *
 * Redis holds the cluster's copy of every consent record (keys under `<prefix>consent:`):
 *
 *   rec           hash   record ID (hex SHA-256 of the bytes) -> record bytes (base64)
 *   pt:<patient>  zset   record IDs of one patient, score = issuedAt
 *   last          hash   patient ID -> issuedAt of the newest record admitted
 *   changed       pub/sub channel: a patient ID whose records changed
 *
 * Order. A single ledger refuses a record whose issuedAt is not after the patient's
 * previous one (ledger/consent.ts), so an old grant cannot be replayed after a revoke.
 * Across gateways the same rule needs one referee: a record is first *admitted* by a
 * Lua script in Redis (atomic compare of issuedAt against `last`), then appended to the
 * local ledger, then announced. Two records of one patient posted to two gateways at
 * the same moment therefore get one cluster-wide order, and every gateway appends them
 * in issuedAt order: the same state everywhere.
 *
 * Trust. Redis is storage, not an authority: every gateway parses and checks the
 * patient's Ed25519 signature of every record it takes from Redis (the ledger's
 * appendConsent does it again) and refuses (logs) anything that does not verify,
 * belongs to another patient, or whose ID is not its hash.
 *
 * Catch-up. The announcement carries only the patient ID; a gateway then reads that
 * patient's records newer than the newest it holds (`lastIssuedAt`), so a missed
 * announcement is repaired by the next one, and at start-up (and after a Redis
 * reconnect) a gateway reads every record and appends those it lacks.
 *
 * Applying a record is the ledger's appendConsent, so a revocation that arrives from
 * Redis ends live MQTT deliveries and dashboard streams exactly as a local one does.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { ConsentError, parseConsent, type ConsentRecord } from '../ledger/consent.ts'
import type { ConsentPort, FrameStore } from './ledger-port.ts'
import type { Logger } from './log.ts'

type Store = FrameStore & { consent?: ConsentPort }
type AppendResult = { leafIndex: number; patientId: string; action: string }

// KEYS: rec, pt:<patient>, last. ARGV: id, base64 record, patient ID, issuedAt.
// Returns 'ok', 'dup' (this exact record is already admitted) or the issuedAt it is not after.
const ADMIT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'dup' end
local last = redis.call('HGET', KEYS[3], ARGV[3])
if last and tonumber(last) >= tonumber(ARGV[4]) then return last end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 'ok'
`

type ConsentRedis = Redis & { mhConsentAdmit(rec: string, pt: string, last: string, id: string, b64: string, patient: string, issuedAt: number): Promise<string> }

export const recordId = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

export interface SharedConsent {
  store: Store
  /** Number of records taken from Redis and appended here (tests, logs). */
  applied(): number
  close(): void
}

/**
 * Wraps `store` so consent records go through Redis, loads every record this gateway
 * lacks, and follows the announcements. `db` and `sub` are two connections the caller
 * owns (`sub` is put in subscriber mode). Stores without consent are returned as they are.
 */
export async function shareConsent(store: Store, o: { db: Redis; sub: Redis; prefix: string; log: Logger }): Promise<SharedConsent> {
  const consent = store.consent
  const ownAppend = store.appendConsent?.bind(store)
  if (!ownAppend || !consent?.lastIssuedAt) return { store, applied: () => 0, close() {} }
  const lastIssued = (patientId: string): number => consent.lastIssuedAt!(patientId) ?? -1

  const k = { rec: o.prefix + 'consent:rec', last: o.prefix + 'consent:last', channel: o.prefix + 'consent:changed', pt: (p: string) => o.prefix + 'consent:pt:' + p }
  o.db.defineCommand('mhConsentAdmit', { numberOfKeys: 3, lua: ADMIT })
  const db = o.db as ConsentRedis
  let applied = 0
  let closed = false
  // One record at a time, in order: appends from announcements, start-up and local posts never interleave.
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn)
    chain = p.catch(() => {})
    return p
  }
  const waiters = new Map<string, { resolve(r: AppendResult): void; reject(e: Error): void }>()

  const refuse = (id: string, reason: string, patientId?: string) =>
    o.log.log('warn', 'consent record from redis refused', { id, patientId, reason })

  /** Checks records read from Redis and appends, in issuedAt order, those newer than what the ledger holds. */
  async function apply(items: Array<{ id: string; b64: string | null; patient?: string }>): Promise<void> {
    const recs: Array<{ id: string; rec: ConsentRecord }> = []
    for (const it of items) {
      if (it.b64 === null) continue // indexed but its bytes are gone: nothing to check
      const bytes = new Uint8Array(Buffer.from(it.b64, 'base64'))
      let rec: ConsentRecord
      try {
        rec = parseConsent(bytes)
      } catch (err) {
        refuse(it.id, (err as Error).message, it.patient)
        waiters.get(it.id)?.reject(err as Error)
        continue
      }
      if (recordId(bytes) !== it.id) refuse(it.id, `record ID is not the SHA-256 of its bytes`, rec.patientId)
      else if (it.patient !== undefined && rec.patientId !== it.patient) refuse(it.id, `record of ${rec.patientId} listed under ${it.patient}`, it.patient)
      else recs.push({ id: it.id, rec })
    }
    recs.sort((a, b) => a.rec.issuedAt - b.rec.issuedAt)
    for (const { id, rec } of recs) {
      if (rec.issuedAt <= lastIssued(rec.patientId)) continue // held already (or older than what is held)
      try {
        const r = await ownAppend!(rec.bytes)
        applied++
        const w = waiters.get(id)
        if (w) w.resolve(r)
        else o.log.log('info', 'consent record applied from cluster', { id, patientId: r.patientId, action: r.action, leafIndex: r.leafIndex })
      } catch (err) {
        o.log.log(err instanceof ConsentError ? 'warn' : 'error', 'consent record from redis not appended', { id, patientId: rec.patientId, reason: (err as Error).message })
        waiters.get(id)?.reject(err as Error)
      }
    }
  }

  const syncPatient = (patientId: string) =>
    serial(async () => {
      const ids = await db.zrangebyscore(k.pt(patientId), `(${lastIssued(patientId)}`, '+inf')
      if (ids.length === 0) return
      const b64s = await db.hmget(k.rec, ...ids)
      await apply(ids.map((id, i) => ({ id, b64: b64s[i] ?? null, patient: patientId })))
    })

  const syncAll = () =>
    serial(async () => {
      const all = await db.hgetall(k.rec)
      await apply(Object.entries(all).map(([id, b64]) => ({ id, b64 })))
    })

  const onMessage = (channel: string, patientId: string) => {
    if (channel !== k.channel || closed) return
    syncPatient(patientId).catch((err: Error) => o.log.log('error', 'consent sync failed', { patientId, error: err.message }))
  }
  o.sub.on('message', onMessage)
  await o.sub.subscribe(k.channel)
  // Subscribed first, then loaded: a record announced in between is read either way.
  await syncAll()
  // After a lost connection, announcements may have been missed: read everything again.
  let firstReady = true
  const onReady = () => {
    if (firstReady || closed) return void (firstReady = false)
    syncAll().catch((err: Error) => o.log.log('error', 'consent resync failed', { error: err.message }))
  }
  if (o.sub.status === 'ready') firstReady = false
  o.sub.on('ready', onReady)

  async function appendConsent(bytes: Uint8Array): Promise<AppendResult> {
    const rec = parseConsent(bytes) // ConsentError: bad record, answered 400/409 as before
    const id = recordId(bytes)
    const r = await db.mhConsentAdmit(k.rec, k.pt(rec.patientId), k.last, id, Buffer.from(bytes).toString('base64'), rec.patientId, rec.issuedAt)
    if (r === 'dup') {
      void syncPatient(rec.patientId).catch(() => {})
      throw new ConsentError(`consent record for ${rec.patientId} is already recorded; replay refused`)
    }
    if (r !== 'ok') throw new ConsentError(`consent record for ${rec.patientId}: issuedAt ${rec.issuedAt} is not after the previous record in the cluster (${r}); replay refused`)
    const done = new Promise<AppendResult>((resolve, reject) => waiters.set(id, { resolve, reject }))
    try {
      await syncPatient(rec.patientId)
      const w = waiters.get(id)
      // Admitted by Redis but not newer than what this ledger holds: a record from before clustering.
      w?.reject(new ConsentError(`consent record for ${rec.patientId}: this gateway holds a record at least as new (${lastIssued(rec.patientId)})`))
      return await done
    } finally {
      waiters.delete(id)
      // Announced even if the local append failed: the record is admitted, the others apply it.
      await db.publish(k.channel, rec.patientId).catch((err: Error) => o.log.log('error', 'consent announce failed', { patientId: rec.patientId, error: err.message }))
    }
  }

  return {
    store: {
      hasFrame: store.hasFrame.bind(store),
      appendFrame: store.appendFrame.bind(store),
      close: store.close.bind(store),
      pending: store.pending?.bind(store),
      consent: store.consent,
      appendConsent,
    },
    applied: () => applied,
    close() {
      closed = true
      o.sub.off('message', onMessage)
      o.sub.off('ready', onReady)
    },
  }
}
