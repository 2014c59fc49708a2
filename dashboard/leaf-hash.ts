/** The ledger's identity for a frame (RFC 6962 leaf hash of its exact bytes, hex); defined in ledger/leaf.ts. */
export { leafHashHex as leafHashOf } from '../ledger/leaf.ts'
