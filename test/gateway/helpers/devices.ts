/** Simulated boards for gateway tests: keys, signed frames, auth tokens, mqtt.js clients. */
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt'
import { generateKey, type KeyMaterial } from '../../../protocol/node/keys.ts'
import { signAuthToken, signFrame, type DeviceSigningKey } from '../../../protocol/node/sign.ts'
import type { FramePayload } from '../../../protocol/portable/frame.ts'
import type { DeviceRegistry } from '../../../gateway/registry.ts'

export type SimKey = DeviceSigningKey

export function newDeviceKey(profile: 'se' | 'bare' = 'se'): SimKey {
  return generateKey(profile === 'se' ? 'p256' : 'hmac') as Extract<KeyMaterial, { type: 'p256' } | { type: 'hmac' }>
}

export function registerSim(reg: DeviceRegistry, key: SimKey, patient = 'patient-1'): void {
  if (key.type === 'p256') reg.register({ id: key.id, profile: 'se', publicKey: key.publicKey, patient })
  else reg.register({ id: key.id, profile: 'bare', secret: key.secret, patient })
}

export function payload(key: SimKey, seq: number, over: Partial<FramePayload> = {}): FramePayload {
  return {
    v: 1,
    deviceId: key.id,
    seq,
    boot: 1,
    t0: Date.now() - 1000,
    ecgHz: 250,
    ecg: Array.from({ length: 250 }, (_, i) => 2048 + Math.round(300 * Math.sin(i / 10))),
    flags: 0,
    dropped: 0,
    fw: 'test-1',
    ...over,
  }
}

export function frame(key: SimKey, seq: number, over: Partial<FramePayload> = {}): Buffer {
  return Buffer.from(signFrame(key, payload(key, seq, over)))
}

let counter = 1
export function token(key: SimKey, opts: { iatMs?: number; counter?: number } = {}): Buffer {
  return Buffer.from(signAuthToken(key, { iatMs: opts.iatMs ?? Date.now(), counter: opts.counter ?? counter++ }))
}

/** Connects as the device; resolves on CONNACK 0, rejects with the CONNACK error otherwise. */
export function connectDevice(url: string, key: SimKey, opts: IClientOptions & { tokenOpts?: { iatMs?: number; counter?: number } } = {}): Promise<MqttClient> {
  const { tokenOpts, ...rest } = opts
  return connect(url, { clientId: key.id, username: key.id, password: token(key, tokenOpts), ...rest })
}

export function connect(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts })
    c.once('connect', () => resolve(c))
    c.once('error', (err) => {
      c.end(true)
      reject(err)
    })
  })
}

/** Publishes at QoS 1 and resolves when PUBACK arrives. */
export function publishAcked(c: MqttClient, topic: string, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => c.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())))
}

/** Ends cleanly when connected; a client the gateway already closed is just torn down. */
export const endClient = (c: MqttClient): Promise<void> => new Promise((r) => c.end(!c.connected, {}, () => r()))

/** SUBSCRIBE at QoS 0: resolves with the granted QoS, 128 when the broker refused the filter. */
export const subscribe = (c: MqttClient, topic: string): Promise<number> =>
  new Promise<number>((resolve, reject) =>
    c.subscribe(topic, { qos: 0 }, (err, granted) => {
      if (err && /Subscribe error/.test(err.message)) return resolve(128)
      if (err) return reject(err)
      resolve(granted![0]!.qos)
    }),
  )
