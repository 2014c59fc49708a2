/**
 * A plain Aedes broker on 127.0.0.1 for the firmware's MQTT client and uplink tests, and a
 * LinkProxy in front of it (cut the link, refuse connections, black-hole PUBACKs); each is
 * closed when the test ends.
 */
import net from 'node:net'
import type { Test } from 'tap'
import { Aedes } from 'aedes'
import { LinkProxy } from './proxy.ts'

export async function startAedes(t: Test): Promise<{ broker: Aedes; port: number }> {
  const broker = await Aedes.createBroker()
  const server = net.createServer(broker.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.teardown(async () => {
    await new Promise<void>((r) => broker.close(() => r()))
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { broker, port: (server.address() as net.AddressInfo).port }
}

export async function proxyTo(t: Test, port: number): Promise<LinkProxy> {
  const proxy = new LinkProxy(port)
  await proxy.listen()
  t.teardown(() => proxy.close())
  return proxy
}
