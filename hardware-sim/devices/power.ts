/**
 * Where a board's battery current goes, by power profile (issue 24, item 7): the average
 * current of an mHealth board streaming from the firmware, hours on a stated cell, and what a
 * power-saving profile trades for them (alarm latency). A Battery (battery.ts) for the virtual
 * board comes from the same figures: `batteryFor(profile, ...)` gives its runtime.
 *
 * The model adds average currents, each from a stated source (low, central and high where the
 * source gives a range):
 *
 * - WiFi and the ESP32 around it, by radio mode. ESP-IDF's power_save example measures the
 *   whole module streaming nothing, radio always on: about 129 mA; modem sleep at DTIM 1 (the
 *   radio off between the access point's beacons): about 45 mA (figures quoted with the
 *   example, e.g. github.com/tobymurray/esp32-mqtt-sntp README; ESP-IDF "Wi-Fi power-saving
 *   mode"). The ESP-WROOM-32 manual (Table 5) gives the parts: RX and listening 80-90 mA,
 *   TX 160-260 mA at 13-21 dBm.
 * - The interpreter never idles: Espruino's ESP32 build busy-polls its main loop (no light
 *   sleep, and none at all with a socket open: shared/docs/espruino-facts.md). The ESP32 data
 *   sheet (v3.5, Table 6, modem-sleep) gives 30-68 mA for the dual-core chip at 240 MHz by
 *   load; one busy core over the idle figure the ESP-IDF numbers include: +0 / +20 / +38 mA.
 * - Each uplink exchange wakes the radio from modem sleep: the TCP/MQTT round trip, the PUBACK
 *   and the driver's stay-awake after a transmission. An estimate (no measurement found):
 *   50 ms plus 5 ms per frame at 100 mA over the sleep floor (low 25 + 2 ms, high 100 + 10 ms).
 *   With the radio always on, transmitting costs (240 - 90) mA for the airtime only: about
 *   2 ms per 1.5 KB frame at 802.11g rates, plus the MAC's overhead: 3 ms.
 * - Sensors: MAX30102 LEDs, 2 x 7.2 mA (LED_PA 0x24) x 411 us pulses x 100 conversions/s =
 *   0.59 mA, plus the chip (~0.6 mA, MAX30102 data sheet, supply current in SpO2 mode); the
 *   MAX30003 ~0.1 mA (data sheet: ~85 uW at 1.1 V ECG channel on); the ATECC608 only while
 *   signing (SE profile: ~14 mA active, data sheet ICC, for ~125 ms per frame).
 *
 * Hours = capacity x usable fraction / average current. A LiPo cell through the board's LDO:
 * the battery supplies the load current; 90 % of the rated capacity is usable above the
 * 3.3 V brown-out (battery.ts LIPO_CURVE_V reaches 3.61 V at 5 %).
 */
import type { BatteryOptions } from './battery.ts'

export type Setting = 'low' | 'central' | 'high'
const IDX: Record<Setting, number> = { low: 0, central: 1, high: 2 }

export interface PowerProfile {
  /** 'stream': a frame each window, radio always on. 'saver': frames batched, modem sleep between. */
  kind: 'stream' | 'saver'
  /** Seconds per frame (mh.cfg windowS). */
  windowS: number
  /** 'saver': seconds between uplinks (mh.cfg saverBatchS). */
  batchS?: number
  /** Frame bytes (COSE) at the configured rates. */
  frameBytes: number
  /** SE profile: the ATECC608 signs each frame. */
  se: boolean
}

/** Average currents in mA, [low, central, high]. */
export const CURRENTS = {
  /** Module, radio always on (ESP-IDF power_save example, no power save). */
  radioOnMa: [120, 129, 140],
  /** Module, modem sleep at DTIM 1 (same example, minimum modem sleep). */
  modemSleepMa: [41, 45, 50],
  /** A busy-polling interpreter over the idle CPU those figures include (ESP32 data sheet, modem-sleep 30-68 mA). */
  interpreterMa: [0, 20, 38],
  /** Radio awake per uplink exchange from modem sleep: ms fixed, ms per frame, mA over the floor. */
  exchangeMs: [25, 50, 100],
  exchangePerFrameMs: [2, 5, 10],
  exchangeOverMa: [90, 100, 110],
  /** Radio on: airtime of one frame, ms, at TX current over RX. */
  txMsPerFrame: [2, 3, 5],
  txOverMa: [70, 150, 170],
  /** MAX30102: LEDs (2 x 7.2 mA x 411 us x 100/s) and the chip. */
  ppgMa: [1.0, 1.2, 1.5],
  /** MAX30003, ECG channel on. */
  ecgMa: [0.08, 0.1, 0.15],
  /** ATECC608 while signing, and for how long per frame (ms). */
  seActiveMa: [13, 14, 16],
  seMsPerFrame: [120, 125, 250],
}

export const USABLE_FRACTION = 0.9

export interface PowerBudget {
  /** Average current, mA, and its parts. */
  avgMa: number
  parts: Record<string, number>
  /** Hours on `capacityMah` (usable fraction applied). */
  hours: number
  /** Worst-case seconds from an event in the signal to its frame reaching the gateway. */
  alarmLatencyS: number
}

function pick(a: number[], s: Setting): number {
  return a[IDX[s]]!
}

/** The average current and hours of a profile on a cell of `capacityMah` (default 1,000 mAh). */
export function powerBudget(p: PowerProfile, capacityMah = 1000, setting: Setting = 'central'): PowerBudget {
  if (!(p.windowS > 0)) throw new RangeError(`windowS: expected > 0, got ${p.windowS}`)
  if (p.kind === 'saver' && !(p.batchS! >= p.windowS)) throw new RangeError(`batchS: expected >= windowS (${p.windowS}), got ${p.batchS}`)
  if (!(capacityMah > 0)) throw new RangeError(`capacityMah: expected > 0, got ${capacityMah}`)
  const c = CURRENTS
  const parts: Record<string, number> = {}
  const framesPerS = 1 / p.windowS
  const sizeFactor = p.frameBytes / 1500
  if (p.kind === 'stream') {
    parts.radio = pick(c.radioOnMa, setting)
    parts.tx = (pick(c.txMsPerFrame, setting) * sizeFactor * framesPerS * pick(c.txOverMa, setting)) / 1000
  } else {
    const batch = p.batchS!
    const frames = batch / p.windowS
    parts.radio = pick(c.modemSleepMa, setting)
    parts.tx = ((pick(c.exchangeMs, setting) + frames * sizeFactor * pick(c.exchangePerFrameMs, setting)) * pick(c.exchangeOverMa, setting)) / 1000 / batch
  }
  parts.interpreter = pick(c.interpreterMa, setting)
  parts.sensors = pick(c.ppgMa, setting) + pick(c.ecgMa, setting)
  if (p.se) parts.se = (pick(c.seActiveMa, setting) * pick(c.seMsPerFrame, setting) * framesPerS) / 1000
  const avgMa = Object.values(parts).reduce((a, b) => a + b, 0)
  // Latency: the event may fall at the start of a window (a window to fill), then a batch to
  // wait for (saver), then delivery (~0.2 s, plus a beacon interval when the radio sleeps).
  const alarmLatencyS = p.windowS + (p.kind === 'saver' ? p.batchS! + 0.3 : 0.2)
  return { avgMa, parts, hours: (capacityMah * USABLE_FRACTION) / avgMa, alarmLatencyS }
}

/** A Battery for the virtual board that runs down as this profile would (hours at the central setting). */
export function batteryFor(p: PowerProfile, capacityMah = 1000, extra: Omit<BatteryOptions, 'runtimeMs'> = {}): BatteryOptions {
  return { ...extra, runtimeMs: powerBudget(p, capacityMah).hours * 3600_000 }
}
