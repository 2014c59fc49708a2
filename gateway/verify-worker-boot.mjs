// Worker entry: load the TypeScript loader in this thread (loader hooks registered in
// the main thread do not reach workers on Node 20), then the worker proper.
import { register } from 'tsx/esm/api'
register()
await import('./verify-worker.ts')
