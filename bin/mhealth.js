#!/usr/bin/env node
// Thin launcher. `mhealth gateway` runs from a bundle with plain Node (bin/bundle-cache.mjs:
// built on first use, rebuilt when a source changes; MHEALTH_FROM_SOURCE=1 skips it); every
// other command registers the TypeScript loader and runs the CLI from source.
const argv = process.argv.slice(2)
// A reader that goes away (`mhealth ... | head -1`) is not a failure of the command: stop
// writing to it and let the command finish with its own exit code, rather than dying on an
// unhandled EPIPE with a stack trace (or taking a running gateway down with its log reader).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
    throw err
  })
}
let gateway = null
if (argv[0] === 'gateway' && process.env.MHEALTH_FROM_SOURCE !== '1') {
  try {
    const { gatewayBundle } = await import('./bundle-cache.mjs')
    gateway = await import(await gatewayBundle())
  } catch (err) {
    const why = err && err.errors && err.errors[0] ? err.errors[0].text : err && err.message
    process.stderr.write(`mhealth: could not bundle the gateway (${why}); running it from source\n`)
  }
}
if (gateway) {
  process.exitCode = await gateway.main(argv.slice(1))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  const { main } = await import('../cli/main.ts')
  process.exitCode = await main(argv)
}
