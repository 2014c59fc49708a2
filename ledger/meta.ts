/** `ledger.json` in the data directory: who produces this ledger (so verify needs no flags). */
import { readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { fromHex, toHex } from '../protocol/portable/bytes.ts'

export interface LedgerMeta {
  producerId: string
  producerPublicKey: Uint8Array
}

export async function readMeta(dir: string): Promise<LedgerMeta | undefined> {
  let text: string
  try {
    text = await readFile(join(dir, 'ledger.json'), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  let j
  try {
    j = JSON.parse(text)
  } catch {
    throw new Error(`${join(dir, 'ledger.json')}: not valid JSON`)
  }
  if (typeof j?.producerId !== 'string' || typeof j?.producerPublicKey !== 'string' || !/^[0-9a-f]{64}$/.test(j.producerPublicKey)) throw new Error(`${join(dir, 'ledger.json')}: expected {"producerId": string, "producerPublicKey": 64 hex}`)
  return { producerId: j.producerId, producerPublicKey: fromHex(j.producerPublicKey) }
}

export async function writeMeta(dir: string, m: LedgerMeta): Promise<void> {
  const tmp = join(dir, 'ledger.json.tmp')
  await writeFile(tmp, JSON.stringify({ v: 1, producerId: m.producerId, producerPublicKey: toHex(m.producerPublicKey) }, null, 2) + '\n')
  await rename(tmp, join(dir, 'ledger.json'))
}
