/** Which check a frame failed; the gateway counts rejections by this. */
export type FrameErrorCode =
  | 'size' // over the size cap, or empty
  | 'cbor' // not well-formed or not in our strict subset of CBOR
  | 'cose' // not a COSE_Sign1/COSE_Mac0 of our profile
  | 'header' // protected/unprotected header outside the profile
  | 'schema' // payload outside the frame schema
  | 'signature' // signature or MAC does not verify
  | 'key' // key missing, malformed or of the wrong type

export class FrameError extends Error {
  override name = 'FrameError'
  constructor(readonly code: FrameErrorCode, message: string) {
    super(message)
  }
}
