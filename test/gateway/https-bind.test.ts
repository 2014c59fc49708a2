/**
 * Per-listener bind addresses on a real gateway: with `host: 0.0.0.0` (boards on the ward
 * network) and `httpHost: 127.0.0.1`, the admin HTTP API answers on loopback only; the same
 * port on the machine's other address is refused, while MQTT is reachable there.
 */
import t from 'tap'
import { connect as netConnect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { startTestGateway, cleanup } from './helpers/gateway.ts'

/** A non-loopback IPv4 address of this machine, or undefined. */
const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address

/** Resolves 'open' when a TCP connection is accepted, or the error code (ECONNREFUSED). */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port }, () => {
      s.destroy()
      resolve('open')
    })
    s.setTimeout(10_000, () => {
      s.destroy()
      resolve('timeout')
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
  })
}

t.test('admin HTTP on 127.0.0.1 only, MQTT on every address', { skip: otherAddress ? false : 'this machine has no non-loopback IPv4 address to connect through' }, async (t) => {
  const gw = await startTestGateway({ host: '0.0.0.0', httpHost: '127.0.0.1' })
  t.teardown(() => cleanup(gw))
  const http = gw.ports.http!
  const mqtt = gw.ports.mqtt!
  t.equal(await probe('127.0.0.1', http), 'open', 'admin API on loopback')
  t.equal((await fetch(`http://127.0.0.1:${http}/healthz`)).status, 200)
  t.equal(await probe(otherAddress!, http), 'ECONNREFUSED', `admin API port refused on ${otherAddress}`)
  t.equal(await probe(otherAddress!, mqtt), 'open', `MQTT reachable on ${otherAddress} (host 0.0.0.0)`)
})

t.test('each listener defaults to host', async (t) => {
  const gw = await startTestGateway({ host: '127.0.0.1' })
  t.teardown(() => cleanup(gw))
  if (otherAddress) t.equal(await probe(otherAddress, gw.ports.mqtt!), 'ECONNREFUSED', 'MQTT on loopback only, as host says')
  t.equal(await probe('127.0.0.1', gw.ports.mqtt!), 'open')
})
