/**
 * Alarm events as ledger leaves (alarm-record.ts): appending one (producer only) and reading
 * them all back, in ledger order, so a restarted gateway rebuilds its alarms from the log.
 */
import { leafHashFast } from './crypto.ts'
import { encodeAlarmRecord, decodeAlarmRecord } from './records.ts'
import { parseAlarmEvent, type AlarmEvent } from './alarm-record.ts'
import { KIND_ALARM } from './leaf.ts'
import { addLeaf, readLeafBody } from './leaf-index.ts'
import { cutIfFull } from './chain.ts'
import { LedgerError } from './types.ts'
import { checkOpen, type LedgerState } from './state.ts'

/** Appends an alarm event's CBOR (checked first); resolves with its leaf once durable. */
export async function appendAlarm(s: LedgerState, eventBytes: Uint8Array): Promise<{ leafIndex: number; leafHash: Uint8Array }> {
  checkOpen(s)
  if (!s.key) throw new LedgerError('replica: alarm events arrive only through synced blocks', 'readonly')
  const ev = parseAlarmEvent(eventBytes)
  // A store that failed to write refuses the append (StorageError), as for frames.
  const fault = s.store.fault
  if (fault) throw fault
  const h = leafHashFast(eventBytes)
  const w = s.store.append(encodeAlarmRecord(ev.t, eventBytes))
  const leafIndex = addLeaf(s, KIND_ALARM, h, null, w.seg, w.offset, ev.t)
  cutIfFull(s)
  await w.durable
  return { leafIndex, leafHash: h }
}

/**
 * Every alarm event with its leaf index, oldest first. Walks the leaf locators (40 bytes a
 * leaf, in memory) and reads only the alarm leaves' records: O(leaves) once, at start.
 */
export async function alarmEvents(s: LedgerState): Promise<{ leafIndex: number; event: AlarmEvent }[]> {
  await s.store.settled()
  const out: { leafIndex: number; event: AlarmEvent }[] = []
  for (let i = 0; i < s.tree.size; i++) {
    if (s.idx.loc.get(i)[0] !== KIND_ALARM) continue
    out.push({ leafIndex: i, event: parseAlarmEvent(decodeAlarmRecord(readLeafBody(s, i)).event) })
  }
  return out
}
