/**
 * The AD8232 firmware: the per-sample pipeline of mh-fw/0.1 kept as a separate entry (not
 * part of the default bundle, firmware/main.ts). An analogRead per timer tick at 250 Hz, PPG
 * decoded per sample, version-1 frames (delta-packed samples). It cannot keep its rate on an
 * ESP32 (docs/firmware.md, "The AD8232"): it is here for bench boards with an AD8232 and for
 * comparison with the burst pipeline (the simulator's cost model runs it to show what a
 * per-sample design loses). Build it like the default bundle with this file as the entry.
 *
 * Pipeline per window: sampler swap -> seq from Persist -> payload (framer) -> COSE
 * (signer; asynchronous on the SE) -> uplink (live publish, or flash ring when offline).
 */
import { Ad8232 } from './drivers/ad8232.ts'
import { Atecc608 } from './drivers/atecc608.ts'
import { Max30102Decoding as Max30102 } from './drivers/max30102-decode.ts'
import { Sampler, FLAG_NOT_SYNCED, type SampleWindow } from './sampler.ts'
import { Framer, FLAG_PPG_OVERFLOW } from './framer.ts'
import { seSigner, bareSigner, type Signer } from './signer.ts'
import { FlashRing } from './store.ts'
import { Persist } from './persist.ts'
import { Clock } from './clock.ts'
import { MqttClient } from './mqtt.ts'
import { Uplink } from './uplink.ts'
import { fetchTime } from './http-time.ts'
import { u8ToStr } from './bytes.ts'
import { hash, boardMs, log, pin, storageSha256, printPublicKey } from './board-io.ts'
import { CFG_FILE, DEFAULTS, RANGE, type Config } from './config.ts'
import { selftestPayload, selftestKey, SELFTEST_ID } from './selftest.ts'
import { CborWriter } from '../protocol/portable/cbor.ts'
import { encodePayload } from '../protocol/portable/frame.ts'
import { sign1ToBeSigned, mac0ToBeMaced } from '../protocol/portable/cose.ts'
import { hmacSha256 } from '../protocol/portable/hash.ts'
import { authPayload } from '../protocol/portable/auth-token.ts'
import { toHex, fromHex } from '../protocol/portable/bytes.ts'

export const FW_VERSION = 'mh-fw/0.1.1-ad8232'

/** This firmware's rates (mh-fw/0.1): ECG ticks per second, MAX30102 samples/s and poll period; its I2C speed. */
const AD8232_HZ = 250
const PPG_HZ = 100
const PPG_POLL_MS = 100
const I2C_HZ = 100000

const Storage = require('Storage')

let se: Atecc608 | null = null

function setupI2C(cfg: Config | undefined): void {
  const p = (cfg && cfg.pins) || {}
  I2C1.setup({ sda: pin(p.sda, DEFAULTS.pins.sda), scl: pin(p.scl, DEFAULTS.pins.scl), bitrate: I2C_HZ })
  se = new Atecc608(I2C1, DEFAULTS.seAddress)
}

/** Per-stage CPU cost (ms of board time spent in each stage) and delivery counters. */
const stats = { frames: 0, frameMs: 0, signErrors: 0, sendMs: 0, nacks: 0, bytes: 0, startMs: 0, timeErrors: 0 }

let app: {
  sampler: Sampler
  mqtt: MqttClient
  uplink: Uplink
  ring: FlashRing
  persist: Persist
  clock: Clock
  signer: Signer
  ppg: Max30102 | null
} | null = null

function start(cfg: Config): void {
  const p = cfg.pins || {}
  const ecgHz = cfg.ecgHz || AD8232_HZ
  const windowS = cfg.windowS || DEFAULTS.windowS
  const ecg = new Ad8232({ analogRead: analogRead, digitalRead: digitalRead, digitalWrite: digitalWrite },
    { out: pin(p.ecg, DEFAULTS.pins.ecg), loPlus: pin(p.loPlus, DEFAULTS.pins.loPlus), loMinus: pin(p.loMinus, DEFAULTS.pins.loMinus) })
  let ppg: Max30102 | null = new Max30102(I2C1, DEFAULTS.ppgAddress)
  try {
    ppg.init()
  } catch (e) {
    log('no MAX30102: ' + e)
    ppg = null
  }
  const persist = new Persist(Storage, 'mh.c', 64, 4)
  persist.open()
  const ring = new FlashRing(Storage, { prefix: 'mh.q', segments: cfg.ringSegments || DEFAULTS.ringSegments, segSize: DEFAULTS.ringSegBytes, maxRecords: DEFAULTS.ringMaxRecords })
  ring.open()
  const clock = new Clock(boardMs)
  // Time before the first sync: the newer of the last time written with the counters and
  // the provisioning time (cfg.t), so offline frames after a reboot carry a usable t0.
  const known = Math.max(persist.cur.wall || 0, cfg.t || 0)
  if (known > 0) clock.assume(known, boardMs())
  persist.wallNow = function () { return clock.anchored ? clock.now() : 0 }
  const signer = cfg.profile === 'se' && se
    ? seSigner(hash, se, cfg.slot || DEFAULTS.slot, cfg.id, boardMs)
    : bareSigner(hash, fromHex(cfg.secret || ''), cfg.id, boardMs)
  const framer = new Framer(4096)
  const base = 'mhealth/dev/' + cfg.id + '/'
  const net = require('net')
  let lastPpgLost = 0
  // Battery through a divider on an ADC pin; readings under 1 V mean nothing is wired there.
  const batPin = cfg.batDivider === 0 ? null : pin(p.bat, DEFAULTS.pins.bat)
  const batDiv = cfg.batDivider || DEFAULTS.batDivider
  const batteryMv = function (): number | undefined {
    if (!batPin) return undefined
    const mv = Math.floor(analogRead(batPin) * 3300 * batDiv + 0.5)
    return mv >= 1000 ? mv : undefined
  }
  let lastOverruns = 0

  const mqtt: MqttClient = new MqttClient({
    clientId: cfg.id,
    keepAliveS: DEFAULTS.keepAliveS,
    subscribe: base + 'control',
    backoffMinMs: DEFAULTS.backoffMinMs,
    backoffMaxMs: DEFAULTS.backoffMaxMs,
    maxPacket: DEFAULTS.maxPacketBytes,
    // Optional TLS (Espruino's tls module; mbedtls needs ~40 KB of heap on the ESP32, see docs).
    dial: function (onOpen) { return (cfg.gw.tls ? require('tls') : net).connect({ host: cfg.gw.host, port: cfg.gw.mqttPort }, onOpen) },
    credentials: function (cb) {
      // Sync the clock before every CONNECT: the token's iat must be inside the gateway's window.
      fetchTime(net, cfg.gw.host, cfg.gw.httpPort, boardMs, DEFAULTS.timeSyncTimeoutMs, function (err, serverMs, rtt, at) {
        if (err) {
          stats.timeErrors++
          log(err)
        } else {
          const first = !clock.synced
          clock.sync(serverMs, rtt, at)
          // Record a good time at once the first time (the counters otherwise carry it every block).
          if (first) persist.save(persist.cur.seqLimit, persist.cur.ctrLimit)
        }
        const claims = { deviceId: cfg.id, iatMs: clock.now(), counter: persist.nextCounter() }
        signer.sign(authPayload(claims), function (e2, token) {
          if (e2 || !token) log('auth token: ' + e2)
          cb(cfg.id, token ? u8ToStr(token) : '')
        })
      })
    },
    onConnect: function () { log('connected'); uplink.onConnect() },
    onClose: function (why) { log('disconnected: ' + why); uplink.onClose() },
    onAck: function (id) { uplink.onAck(id) },
    onMessage: function (topic, payload) { control(payload) },
    log: log,
  })
  const uplink = new Uplink(mqtt, ring, base + 'frames', DEFAULTS.inflight)

  function control(payload: string): void {
    let m: any
    try {
      m = JSON.parse(payload)
    } catch (e) {
      return
    }
    if (m.t === 'time' && typeof m.now === 'number') clock.sync(m.now, 0, boardMs())
    else if (m.t === 'nack') {
      stats.nacks++
      log('gateway refused seq ' + m.seq + ': ' + m.reason)
    } else if (m.t === 'config') {
      let changed = false
      if (m.ecgHz >= RANGE.ecgHzMin && m.ecgHz <= RANGE.ecgHzMax && m.ecgHz !== cfg.ecgHz) { cfg.ecgHz = m.ecgHz; changed = true }
      if (m.windowS >= RANGE.windowSMin && m.windowS <= RANGE.windowSMax && m.windowS !== cfg.windowS) { cfg.windowS = m.windowS; changed = true }
      if (changed) {
        Storage.writeJSON(CFG_FILE, cfg)
        log('config changed; restarting the sampler')
        sampler.stop()
        sampler = makeSampler(cfg.ecgHz || AD8232_HZ, cfg.windowS || DEFAULTS.windowS)
        if (app) app.sampler = sampler
        sampler.start()
      }
    }
  }

  function onWindow(w: SampleWindow): void {
    const t = boardMs()
    const s = sampler
    let extra = clock.synced ? 0 : FLAG_NOT_SYNCED
    if (s.stats.ppgLost !== lastPpgLost) extra |= FLAG_PPG_OVERFLOW
    lastPpgLost = s.stats.ppgLost
    // Windows lost to overruns count as dropped frames, like ring overflow.
    const dropped = ring.takeDropped() + (s.stats.overruns - lastOverruns)
    lastOverruns = s.stats.overruns
    let payload: Uint8Array
    try {
      payload = framer.encodeWindow(w, {
        deviceId: cfg.id, seq: persist.nextSeq(), boot: persist.boot, t0: clock.stamp(w.t0),
        ecgHz: s.o.ecgHz, ppgHz: s.o.ppgHz, extraFlags: extra, dropped: dropped, fw: FW_VERSION, batteryMv: batteryMv(),
      })
    } catch (e) {
      log('frame: ' + e)
      ring.dropped += dropped
      s.release(w)
      return
    }
    stats.frameMs += boardMs() - t
    signer.sign(payload, function (err, cose) {
      s.release(w)
      if (err || !cose) {
        stats.signErrors++
        ring.dropped += dropped + 1
        log('sign: ' + err)
        return
      }
      const t2 = boardMs()
      stats.frames++
      stats.bytes += cose.length
      try {
        uplink.submit(u8ToStr(cose))
      } catch (e) {
        log('send: ' + e)
      }
      stats.sendMs += boardMs() - t2
    })
  }

  function makeSampler(hz: number, win: number): Sampler {
    return new Sampler(ecg, ppg, { ecgHz: hz, windowS: win, ppgHz: PPG_HZ, ppgPollMs: PPG_POLL_MS }, boardMs, onWindow)
  }

  let sampler = makeSampler(ecgHz, windowS)
  app = { sampler: sampler, mqtt: mqtt, uplink: uplink, ring: ring, persist: persist, clock: clock, signer: signer, ppg: ppg }
  stats.startMs = boardMs()
  sampler.start()

  const startMqtt = function () { mqtt.start() }
  if (cfg.wifi && cfg.wifi.ssid) {
    const wifi = require('Wifi')
    const join = function () {
      wifi.connect(cfg.wifi!.ssid, { password: cfg.wifi!.pass }, function (err) {
        if (err) {
          log('wifi: ' + err)
          setTimeout(join, DEFAULTS.wifiRetryMs)
          return
        }
        log('wifi up')
        startMqtt()
      })
    }
    // The ESP32 port reassociates by itself after a drop; reconnect MQTT soon after instead
    // of waiting out a backoff that grew while the network was gone.
    wifi.on('connected', function () { mqtt.kick() })
    join()
  } else startMqtt()
}

/** REPL: status counters as JSON (per-stage cost, delivery, memory). */
function mhStatus(): string {
  const a = app
  const out: any = { fw: FW_VERSION, up: !!a, stats: stats }
  if (a) {
    out.boot = a.persist.boot
    out.seq = a.persist.seq
    out.sampler = a.sampler.stats
    out.signer = a.signer.stats
    out.mqtt = a.mqtt.stats
    out.connected = a.mqtt.connected
    out.uplink = a.uplink.stats
    out.backlog = a.ring.count
    out.synced = a.clock.synced
    out.elapsedMs = boardMs() - stats.startMs
  }
  try {
    out.mem = process.memory()
  } catch (e) {
    // not every build reports memory
  }
  return JSON.stringify(out)
}

/** REPL: personalises the SE if blank and prints its public key (65 bytes, hex) for provisioning. */
function mhPubKey(): void {
  if (!se) setupI2C(undefined)
  printPublicKey(se!)
}

/** Prints the fixed test frame's CBOR, Sig_structure SHA-256, bare HMAC, and whether the SE answers. */
function selfTest(): void {
  const payload = encodePayload(new CborWriter(2048), selftestPayload())
  print('SELFTEST cbor ' + toHex(payload))
  print('SELFTEST sig-sha256 ' + toHex(hash.sha256(sign1ToBeSigned(SELFTEST_ID, payload))))
  print('SELFTEST hmac ' + toHex(hmacSha256(hash, selftestKey(), mac0ToBeMaced(SELFTEST_ID, payload))))
  if (!se) setupI2C(undefined)
  se!.info(function (err, rev) {
    print('SELFTEST se ' + (err ? 'absent (' + err + ')' : 'ok rev ' + toHex(rev as Uint8Array)))
  })
}

const g = global as any
g.selfTest = selfTest
g.mhStatus = mhStatus
g.mhPubKey = mhPubKey
g.mhHash = storageSha256

function boot(): void {
  const cfg = Storage.readJSON(CFG_FILE, true) as Config | undefined
  if (!cfg || !cfg.id || !cfg.gw) {
    log('not provisioned (no ' + CFG_FILE + '); run mhealth provision')
    return
  }
  try {
    setupI2C(cfg)
    start(cfg)
    log(FW_VERSION + ' up as ' + cfg.id + ' (' + cfg.profile + ')')
  } catch (e) {
    log('boot failed: ' + e)
  }
}

boot()
