/**
 * Firmware entry: reads the provisioned configuration from Storage, wires drivers,
 * acquisition, frame builder, signer, flash ring and MQTT together, and exposes a few REPL
 * functions (selfTest, mhStatus, mhPubKey, mhHash) used by `mhealth flash` / `provision`.
 *
 * One drain timer empties the MAX30003's and the MAX30102's FIFOs in bursts into raw byte
 * windows (acquire.ts); frames are version 2 (frame2.ts) carrying the FIFO bytes as read. No
 * JavaScript runs per sample. Per window, pipeline.ts builds, seals and sends in short
 * callbacks; a watchdog restarts what stopped (issue 12) and the next frame says so
 * (FLAG_RECOVERED, key 23). The AD8232 per-sample firmware (version-1 frames) is a separate
 * entry, legacy-ad8232.ts: docs/firmware.md says why.
 */
import { Atecc608 } from './drivers/atecc608.ts'
import { Max30102 } from './drivers/max30102.ts'
import { Max30003 } from './drivers/max30003.ts'
import { Acquirer, type RawWindow } from './acquire.ts'
import { Frame2 } from './frame2.ts'
import { Pipeline } from './pipeline.ts'
import { Watchdog } from './watchdog.ts'
import { seSigner, bareSigner, authPayloads, type Signer } from './signer.ts'
import { FlashRing } from './store.ts'
import { Persist } from './persist.ts'
import { Clock } from './clock.ts'
import { MqttClient } from './mqtt.ts'
import { Uplink } from './uplink.ts'
import { fetchTime } from './http-time.ts'
import { u8ToStr } from './bytes.ts'
import { hash, boardMs, log, pin, storageSha256, printPublicKey } from './board-io.ts'
import { CFG_FILE, DEFAULTS, RANGE, type Config } from './config.ts'
import { selftestWindow, selftestKey, SELFTEST_ID, SELFTEST_FRAME, SELFTEST_META } from './selftest.ts'
import { FLAG_TIME_UNSYNCED } from '../protocol/portable/frame.ts'
import { toHex, fromHex } from '../protocol/portable/bytes.ts'

export const FW_VERSION = 'mh-fw/0.2.0'

/** The identity the flash ring was written under (re-provisioning drops a ring of another). */
export const RING_ID_FILE = 'mh.qid'
/** Why the watchdog rebooted the board, read (and erased) at the next boot. */
export const WD_FILE = 'mh.wd'

const Storage = require('Storage')

/** MAX30003 rates at FMSTR = 00: the nearest to what was asked. */
export function max30003Rate(hz: number): number {
  return hz < 192 ? 128 : hz < 384 ? 256 : 512
}

let se: Atecc608 | null = null

function setupI2C(cfg: Config | undefined): void {
  const p = (cfg && cfg.pins) || {}
  const sda = pin(p.sda, DEFAULTS.pins.sda)
  const scl = pin(p.scl, DEFAULTS.pins.scl)
  const bus = function (hz: number) { I2C1.setup({ sda: sda, scl: scl, bitrate: hz }) }
  bus(DEFAULTS.i2cBitrate)
  // The ATECC608's wake pulse needs the slow bus (driver header); everything else runs at 400 kHz.
  se = new Atecc608(I2C1, DEFAULTS.seAddress, boardMs, function (slow) { bus(slow ? DEFAULTS.i2cWakeBitrate : DEFAULTS.i2cBitrate) })
}

/** Delivery counters (the per-stage costs are the pipeline's, copied in by mhStatus). */
const stats = { frames: 0, frameMs: 0, signErrors: 0, sendMs: 0, nacks: 0, bytes: 0, startMs: 0, timeErrors: 0, kidMismatch: 0, ringDropped: 0 }

/**
 * Faults the board recovered from (issue 12), for mhStatus(); `pending` is what the next
 * frame reports (key 23, FLAG_RECOVERED) on top of the acquisition's and pipeline's own.
 */
const faults = { pending: 0, restarts: 0, idleRestarts: 0, timerRestarts: 0, reboots: 0, seResets: 0, memory: 0, connectStalls: 0, lastReboot: '' }

let app: {
  acq: () => Acquirer | null
  sensors: () => string
  pipe: Pipeline<RawWindow>
  mqtt: MqttClient
  uplink: Uplink
  ring: FlashRing
  persist: Persist
  clock: Clock
  signer: Signer
  wd: Watchdog
} | null = null

function start(cfg: Config): void {
  const p = cfg.pins || {}
  const persist = new Persist(Storage, 'mh.c', 64, 4)
  persist.open()
  const ring = new FlashRing(Storage, { prefix: 'mh.q', segments: cfg.ringSegments || DEFAULTS.ringSegments, segSize: DEFAULTS.ringSegBytes, maxRecords: DEFAULTS.ringMaxRecords })
  ring.open()
  // Frames kept for another identity would be refused forever (kid-mismatch): drop them.
  const ringId = Storage.read(RING_ID_FILE)
  if (ringId !== undefined && ringId !== cfg.id) {
    stats.ringDropped = ring.erase()
    log('re-provisioned as ' + cfg.id + ': dropped ' + stats.ringDropped + ' stored frames of ' + ringId)
  }
  if (ringId !== cfg.id) Storage.write(RING_ID_FILE, cfg.id)
  const clock = new Clock(boardMs)
  // Time before the first sync: the newer of the last time written with the counters and
  // the provisioning time (cfg.t), so offline frames after a reboot carry a usable t0.
  const known = Math.max(persist.cur.wall || 0, cfg.t || 0)
  if (known > 0) clock.assume(known, boardMs())
  persist.wallNow = function () { return clock.anchored ? clock.now() : 0 }
  const signer = cfg.profile === 'se' && se
    ? seSigner(hash, se, cfg.slot || DEFAULTS.slot, cfg.id, boardMs)
    : bareSigner(hash, fromHex(cfg.secret || ''), cfg.id, boardMs)
  const authPayload = authPayloads(cfg.id)
  const base = 'mhealth/dev/' + cfg.id + '/'
  const net = require('net')
  const saver = cfg.power === 'saver'
  const batchS = cfg.saverBatchS || DEFAULTS.saverBatchS
  // Battery through a divider on an ADC pin; readings under 1 V mean nothing is wired there.
  const batPin = cfg.batDivider === 0 ? null : pin(p.bat, DEFAULTS.pins.bat)
  const batDiv = cfg.batDivider || DEFAULTS.batDivider
  const batteryMv = function (): number | undefined {
    if (!batPin) return undefined
    const mv = Math.floor(analogRead(batPin) * 3300 * batDiv + 0.5)
    return mv >= 1000 ? mv : undefined
  }
  /**
   * Runs `fn` in a callback right after the next drain: a connect blocks the interpreter until
   * TCP answers, and what it may take without losing samples is the FIFOs' slack, all of it
   * only when they have just been emptied.
   */
  const afterDrain = function (fn: () => void) {
    if (acq) acq.after.push(fn)
    else setTimeout(fn, 0)
  }

  const mqtt: MqttClient = new MqttClient({
    clientId: cfg.id,
    // Held frames go out every batchS: the link must outlive the quiet time between batches.
    keepAliveS: saver ? Math.max(DEFAULTS.keepAliveS, 2 * batchS) : DEFAULTS.keepAliveS,
    subscribe: base + 'control',
    backoffMinMs: DEFAULTS.backoffMinMs,
    backoffMaxMs: DEFAULTS.backoffMaxMs,
    maxPacket: DEFAULTS.maxPacketBytes,
    connectTimeoutMs: DEFAULTS.timeSyncTimeoutMs + 25000,
    // Optional TLS (Espruino's tls module; mbedtls needs ~40 KB of heap on the ESP32, see docs).
    // mqtt.ts catches a connect that throws (refused, DNS).
    // The dial runs in the credentials' callback, itself right after a drain (below).
    dial: function (onOpen) {
      return (cfg.gw.tls ? require('tls') : net).connect({ host: cfg.gw.host, port: cfg.gw.mqttPort }, onOpen)
    },
    credentials: function (cb) {
      // Sync the clock before every CONNECT: the token's iat must be inside the gateway's window.
      afterDrain(function () { fetchTime(net, cfg.gw.host, cfg.gw.httpPort, boardMs, DEFAULTS.timeSyncTimeoutMs, function (err, serverMs, rtt, at) {
        if (err) {
          stats.timeErrors++
          log(err)
        } else {
          const first = !clock.synced
          clock.sync(serverMs, rtt, at)
          // Record a good time at once the first time (the counters otherwise carry it every block).
          if (first) persist.save(persist.cur.seqLimit, persist.cur.ctrLimit)
        }
        // The token in a callback of its own: time fetch, token and dial each stay short (a
        // refused connect makes all three run back to back on every retry).
        afterDrain(function () {
          signer.sign(authPayload(clock.now(), persist.nextCounter()), function (e2, token) {
            if (e2 || !token) log('auth token: ' + e2)
            const pass = token ? u8ToStr(token) : ''
            afterDrain(function () { cb(cfg.id, pass) })
          })
        })
      }) })
    },
    onConnect: function () { log('connected'); uplink.onConnect() },
    onClose: function (why) { log('disconnected: ' + why); uplink.onClose() },
    onAck: function (id) { uplink.onAck(id) },
    onMessage: function (topic, payload) { control(payload) },
    log: log,
  })
  const uplink = new Uplink(mqtt, ring, base + 'frames', DEFAULTS.inflight)
  uplink.hold = saver

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
      if (m.reason === 'kid-mismatch') stats.kidMismatch++
      log('gateway refused seq ' + m.seq + ': ' + m.reason)
    } else if (m.t === 'config') {
      let changed = false
      if (m.ecgHz >= RANGE.ecgHzMin && m.ecgHz <= RANGE.ecgHzMax && m.ecgHz !== cfg.ecgHz) { cfg.ecgHz = m.ecgHz; changed = true }
      if (m.windowS >= RANGE.windowSMin && m.windowS <= RANGE.windowSMax && m.windowS !== cfg.windowS) { cfg.windowS = m.windowS; changed = true }
      if (changed) {
        Storage.writeJSON(CFG_FILE, cfg)
        log('config changed: restarting')
        restart()
      }
    }
  }

  // ---- sensors: MAX30003 on SPI2 (mode 0), MAX30102 on I2C1 ----
  const spi = SPI2
  const cs = pin(p.ecgCs, DEFAULTS.pins.ecgCs)
  const intbPin = p.ecgInt === '' ? null : pin(p.ecgInt, DEFAULTS.pins.ecgInt)
  spi.setup({ sck: pin(p.sck, DEFAULTS.pins.sck), miso: pin(p.miso, DEFAULTS.pins.miso), mosi: pin(p.mosi, DEFAULTS.pins.mosi), baud: DEFAULTS.spiBaud, mode: 0 })
  if (intbPin) pinMode(intbPin, 'input_pullup')
  // SPI2 itself is the driver's bus (it frames each transfer on `cs`); INTB is read by a bound
  // native: neither costs a JavaScript call per drain.
  const ecgDrv = new Max30003(spi, boardMs, cs)
  const ppgDrv = new Max30102(I2C1, DEFAULTS.ppgAddress)
  const intb = intbPin ? (digitalRead as any).bind(null, intbPin) : null
  let acq: Acquirer | null = null
  let frame: Frame2 | null = null
  let missing = ''
  /** Frames lost outside the counts of the ring, pipeline and acquisition (a build that threw after taking them). */
  let carryDropped = 0

  const pipe: Pipeline<RawWindow> = new Pipeline<RawWindow>({
    build: function (w) {
      // A window with no ECG sample (all of it lost in a stall) makes no frame: version 2
      // needs samples in a lane it carries. Counted as dropped, in the next frame.
      if (w.ecgN === 0) return null
      // What was lost and recovered since the previous frame, everywhere (fields, not calls: this is per frame).
      const a = acq!
      const dropped = carryDropped + ring.dropped + pipe.dropped + a.dropped
      const f = faults.pending + pipe.faults + a.faults
      carryDropped = ring.dropped = pipe.dropped = a.dropped = 0
      faults.pending = pipe.faults = a.faults = 0
      try {
        return frame!.build(w, {
          seq: persist.nextSeq(), boot: persist.boot, t0: clock.stamp(w.t0), flags: clock.synced ? 0 : FLAG_TIME_UNSYNCED,
          dropped: dropped, batteryMv: batteryMv(), faults: f,
        })
      } catch (e) {
        carryDropped += dropped
        faults.pending += f
        throw e
      }
    },
    release: function (w, token) { if (acq) acq.release(w, token) },
    valid: function (w, token) { return w.token === token },
    signer: signer,
    submit: function (s) { uplink.submit(s) },
    toStr: u8ToStr,
    now: boardMs,
    log: log,
    jobMaxMs: 750 * (cfg.windowS || DEFAULTS.windowS),
  })

  /** (Re)starts acquisition: sensors set up, windows and frame builder for the configuration. */
  function restart(): void {
    // Connects waiting for a drain wait for the new acquisition's (or run now, if there is none).
    const waiting = acq ? acq.after : []
    if (acq) {
      acq.stop()
      // What the old acquisition counted, and the window it was filling, go into the next frame.
      carryDropped += acq.dropped + 1
      faults.pending += acq.faults
    }
    acq = null
    pipe.reset()
    const rate = max30003Rate(cfg.ecgHz || DEFAULTS.ecgHz)
    const windowS = cfg.windowS || DEFAULTS.windowS
    const gain = cfg.ecgGain || DEFAULTS.ecgGain
    let ecg: Max30003 | null = ecgDrv
    let ppg: Max30102 | null = ppgDrv
    let why = ''
    try {
      ecgDrv.init({ rate: rate, gain: gain })
    } catch (e) {
      ecg = null
      why = 'no MAX30003: ' + e
    }
    try {
      ppgDrv.init({ sps: DEFAULTS.ppgSps, average: DEFAULTS.ppgAverage })
    } catch (e) {
      ppg = null
      why += ' no MAX30102: ' + e
    }
    if (why !== missing) log(why || 'sensors answer')
    missing = why
    // Without the ECG front end there is no window clock: nothing is streamed, mhStatus()
    // says why, and the watchdog tries the sensors again every few windows.
    if (!ecg) {
      for (let i = 0; i < waiting.length; i++) setTimeout(waiting[i], 0)
      return
    }
    frame = new Frame2({ deviceId: cfg.id, fw: FW_VERSION, ecgHz: rate, ppgHz: ppg ? DEFAULTS.ppgHz : 0, ecgGain: gain },
      rate * windowS, ppg ? DEFAULTS.ppgHz * windowS + 33 : 0)
    acq = new Acquirer(ecg, intb, ppg, { ecgHz: rate, ppgHz: DEFAULTS.ppgHz, windowS: windowS, drainMs: cfg.drainMs || DEFAULTS.drainMs[rate] },
      boardMs, function (w, token) {
        if (wd) wd.ensure()
        pipe.onWindow(w, token)
      })
    acq.after = waiting
    acq.start()
    pipe.p.jobMaxMs = 750 * windowS
    if (wd) wd.o.windowMs = windowS * 1000
  }

  const reboot = function (why: string): void {
    log('watchdog: ' + why + '; rebooting')
    try {
      Storage.write(WD_FILE, JSON.stringify({ why: why }))
      uplink.onClose() // frames awaiting PUBACK are only in RAM: into flash first
      mqtt.stop()
    } catch (e) {
      // rebooting regardless
    }
    E.reboot()
  }
  let seResets = se ? se.resets : 0
  let wd: Watchdog | null = null
  restart()
  wd = new Watchdog({
    periodMs: DEFAULTS.watchdogMs,
    windowMs: (cfg.windowS || DEFAULTS.windowS) * 1000,
    stallWindows: 3,
    maxRestarts: 3,
    now: boardMs,
    made: function () { return pipe.stats.made },
    produced: function () { return acq ? acq.produced() : 0 },
    // Three drain periods overdue: the first watchdog tick after a drain stopped notices it. No
    // acquisition because a sensor is missing: the idle restarts retry it, every few windows;
    // one cut short before its timer started: overdue since time 0.
    drainDeadAt: function () { return acq ? acq.nextDue + 3 * acq.o.drainMs : missing ? -1 : 0 },
    restart: function (why) {
      log('watchdog: ' + why + '; restarting')
      if (why.indexOf('no samples') === 0) faults.idleRestarts++
      else if (why.indexOf('drain timer') === 0) faults.timerRestarts++
      else faults.restarts++
      faults.pending++
      restart()
    },
    reboot: reboot,
    check: function () {
      const n = (mqtt.check() ? 1 : 0)
      faults.connectStalls += n
      // An out-of-memory the interpreter survived (it abandons the callback and sets a flag).
      const f = E.getErrorFlags ? E.getErrorFlags() : []
      const m = f && f.indexOf('MEMORY') >= 0 ? 1 : 0
      faults.memory += m
      const r = se ? se.resets - seResets : 0
      faults.seResets += r
      if (se) seResets = se.resets
      faults.pending += n + m + r
    },
  })
  wd.start()
  stats.startMs = boardMs()
  if (saver) setInterval(function () { uplink.flush() }, batchS * 1000)
  app = {
    acq: function () { return acq }, sensors: function () { return missing },
    pipe: pipe, mqtt: mqtt, uplink: uplink, ring: ring, persist: persist, clock: clock, signer: signer, wd: wd,
  }

  const startMqtt = function () { mqtt.start() }
  if (cfg.wifi && cfg.wifi.ssid) {
    const wifi = require('Wifi') as any
    const join = function () {
      wifi.connect(cfg.wifi!.ssid, { password: cfg.wifi!.pass }, function (err: any) {
        if (err) {
          log('wifi: ' + err)
          setTimeout(join, DEFAULTS.wifiRetryMs)
          return
        }
        log('wifi up')
        // The power profile's radio: asleep between the access point's beacons (modem sleep),
        // or always on; said explicitly, whatever the port's default.
        if (wifi.setConfig) wifi.setConfig({ powersave: saver ? 'ps-poll' : 'none' })
        startMqtt()
      })
    }
    // The ESP32 port reassociates by itself after a drop; reconnect MQTT soon after instead
    // of waiting out a backoff that grew while the network was gone.
    wifi.on('connected', function () { mqtt.kick() })
    join()
  } else startMqtt()
}

/** REPL: status counters as JSON (per-stage cost, delivery, faults, memory). */
function mhStatus(): string {
  const a = app
  const out: any = { fw: FW_VERSION, up: !!a, stats: stats, faults: faults }
  if (a) {
    const ps = a.pipe.stats
    stats.frames = ps.frames
    stats.frameMs = ps.frameMs
    stats.signErrors = ps.signErrors
    stats.sendMs = ps.sendMs
    stats.bytes = ps.bytes
    const acq = a.acq()
    const s: any = acq ? Object.assign({}, acq.stats) : { sensors: a.sensors() }
    // The per-sample sampler's names too, for tools that read either firmware.
    s.ticks = s.drains
    s.missed = s.ecgLost + s.ppgLost
    s.overruns = s.reclaimed + s.skipped
    out.boot = a.persist.boot
    out.seq = a.persist.seq
    out.sampler = s
    out.pipeline = ps
    out.signer = a.signer.stats
    out.mqtt = a.mqtt.stats
    out.connected = a.mqtt.connected
    out.uplink = a.uplink.stats
    out.backlog = a.ring.count
    out.synced = a.clock.synced
    out.watchdog = a.wd.stats
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

/**
 * Prints the fixed test frame's CBOR (built by the firmware's frame builder), the SHA-256 of its
 * Sig_structure and its HMAC (through the firmware's own signers), and whether the SE answers.
 */
function selfTest(): void {
  const payload = new Frame2(SELFTEST_FRAME, 256, 25).build(selftestWindow(), SELFTEST_META)
  print('SELFTEST cbor ' + toHex(payload))
  // The SE signer hands its digest to the part: a stand-in part prints it instead.
  seSigner(hash, { signDigest: function (slot: number, d: Uint8Array) { print('SELFTEST sig-sha256 ' + toHex(d)) } } as any, 0, SELFTEST_ID, boardMs)
    .sign(payload, function () { /* the stand-in never signs */ })
  bareSigner(hash, selftestKey(), SELFTEST_ID, boardMs).sign(payload, function (err, cose) {
    print('SELFTEST hmac ' + toHex(cose!.subarray(cose!.length - 32)))
  })
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
  const note = Storage.readJSON(WD_FILE, true)
  if (note && note.why) {
    faults.reboots++
    faults.pending++
    faults.lastReboot = note.why
    Storage.erase(WD_FILE)
    log('restarted by the watchdog: ' + note.why)
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
