/**
 * The provisioned configuration the firmware reads from Storage (`mh.cfg`, JSON) at boot,
 * and the defaults for what it leaves out. Kept apart from main.ts so Node code
 * (provisioning, the simulator rig) can share the type and the defaults without running
 * the firmware. Bundled for Espruino: plain literals only.
 */
export const CFG_FILE = 'mh.cfg'

/**
 * Every default of the firmware configuration, in one place: the firmware uses them for
 * fields `mh.cfg` leaves out, `mhealth provision` offers them as its option defaults, and
 * the simulator wires its virtual boards (hardware-sim/rig.ts) to match.
 */
export const DEFAULTS = {
  /**
   * ECG samples/s of the MAX30003: 128, 256 or 512 (another value is taken to the nearest of
   * them). 128 is the rate the CPU budget affords (docs/firmware.md, "Budget": every halving of
   * the FIFO's slack doubles the drains); it covers the 0.5-40 Hz monitoring band the chip
   * filters to, and the chip's own R-to-R detector times beats at 7.8 ms whatever the rate.
   */
  ecgHz: 128,
  /** MAX30003 ECG gain, V/V (20, 40, 80, 160): 80 gives +-12.5 mV full scale at VREF 1 V. */
  ecgGain: 80,
  /**
   * Seconds of samples per frame: 2 halves the per-frame work (build, MAC or signature, send)
   * per second against 1 s more alarm latency (docs/firmware.md, "Budget").
   */
  windowS: 2,
  /**
   * MAX30102 FIFO rate (samples/s after SMP_AVE): 100 conversions/s averaged 2 to 1 = 50
   * samples/s, 300 B/s of red/IR; its 32-sample FIFO then holds 640 ms (docs/firmware.md).
   */
  ppgHz: 50,
  ppgSps: 100,
  ppgAverage: 2,
  /**
   * Period of the one drain timer, ms, by ECG rate: inside the MAX30003 FIFO's 32 words
   * (250 ms at 128 sps) with room left for the longest other callback (50 ms at the high
   * cost) and the drain itself (docs/firmware.md, "Budget"). 256 and 512 sps must drain four
   * and ten times as often: configurable, over the CPU budget.
   */
  drainMs: { 128: 180, 256: 62.5, 512: 25 } as { [sps: number]: number },
  /**
   * Power profile: 'stream' (a frame every window, the radio always on) or 'saver' (WiFi modem
   * sleep, frames kept in flash and sent every `saverBatchS` seconds): about 13 h instead of 6 h
   * on 1,000 mAh against 12 s instead of 2 s to the gateway (docs/firmware.md, "Battery").
   */
  power: 'stream',
  saverBatchS: 10,
  /** SE key slot that signs (ATECC608 slot 0 holds the device key). */
  slot: 0,
  /** Flash ring for frames kept while offline: segments of `ringSegBytes`, at most `ringMaxRecords` frames per segment. */
  ringSegments: 12,
  ringSegBytes: 16384,
  ringMaxRecords: 240,
  /** The gateway's MQTT port (the port the gateway listens on by default). */
  mqttPort: 1883,
  /** MQTT keep-alive, s; reconnect backoff grows from min to max, ms; largest MQTT packet, bytes. */
  keepAliveS: 30,
  backoffMinMs: 1000,
  backoffMaxMs: 60000,
  maxPacketBytes: 4096,
  /** Frames published and awaiting PUBACK at once (more go to the flash ring). */
  inflight: 4,
  /** Wait for the gateway's GET /api/time answer, ms; wait before retrying a WiFi join, ms. */
  timeSyncTimeoutMs: 5000,
  wifiRetryMs: 5000,
  /** The watchdog's tick: also how long a stopped drain timer goes unnoticed at most. */
  watchdogMs: 1000,
  /** Battery divider ratio Vcell/Vpin (0 in mh.cfg = no battery sense). */
  batDivider: 2,
  /**
   * Reference wiring (Espruino pin names). ECG front end: a MAX30003 on VSPI (SPI2: SCK D18,
   * MISO D19, MOSI D23, chip select D5, INTB on D4); the AD8232 option on an ADC pin (ecg) with
   * its lead-off outputs. I2C1 (SDA D21, SCL D22) carries the MAX30102 and the ATECC608.
   */
  pins: {
    ecg: 'D36', loPlus: 'D34', loMinus: 'D35', sda: 'D21', scl: 'D22', bat: 'D39',
    sck: 'D18', miso: 'D19', mosi: 'D23', ecgCs: 'D5', ecgInt: 'D4',
  },
  /**
   * I2C1 speed and addresses: ATECC608 (its factory address) and MAX30102. 400 kHz keeps a
   * PPG burst short (the ESP32 I2C read blocks the interpreter: ~23 us per byte); the ATECC608
   * wake drops the bus to 100 kHz for its 60 us low pulse (`i2cWakeBitrate`).
   */
  i2cBitrate: 400000,
  i2cWakeBitrate: 100000,
  /** SPI2 clock for the MAX30003, Hz (the part takes up to 12 MHz; 4 MHz: a 97-byte burst in ~0.2 ms). */
  spiBaud: 4000000,
  seAddress: 0x60,
  ppgAddress: 0x57,
  /** Serial speed of the board's Espruino console (`mhealth flash` / `provision`). */
  baud: 115200,
}

/** What a configuration (mh.cfg, provisioning, the gateway's config message) may ask for. */
export const RANGE = {
  ecgHzMin: 125,
  ecgHzMax: 512,
  windowSMin: 1,
  windowSMax: 5,
}

export interface Config {
  /** Device ID (17 chars, protocol/portable/device-id.ts). */
  id: string
  /** 'se' (ATECC608, ES256) or 'bare' (HMAC-SHA256 with `secret`). */
  profile: string
  /** Bare profile: HMAC secret, hex (32 bytes). */
  secret?: string
  /** SE key slot (default DEFAULTS.slot). */
  slot?: number
  wifi?: { ssid: string; pass?: string }
  /** Gateway: MQTT port for frames, HTTP port for GET /api/time; fp = TLS certificate SHA-256. */
  gw: { host: string; mqttPort: number; httpPort: number; tls?: boolean; fp?: string }
  /** ECG rate, RANGE.ecgHzMin..Max Hz (default DEFAULTS.ecgHz; MAX30003: nearest of 128/256/512). */
  ecgHz?: number
  /** MAX30003 gain, V/V (default DEFAULTS.ecgGain). */
  ecgGain?: number
  /** Drain timer period, ms (default DEFAULTS.drainMs for the rate). */
  drainMs?: number
  /** 'stream' (default) or 'saver'; saverBatchS: seconds between uplinks in 'saver'. */
  power?: string
  saverBatchS?: number
  /** Seconds per frame, RANGE.windowSMin..Max (default DEFAULTS.windowS). */
  windowS?: number
  /** Flash ring segments of DEFAULTS.ringSegBytes (default DEFAULTS.ringSegments). */
  ringSegments?: number
  /** Pin names (defaults: DEFAULTS.pins). */
  pins?: { ecg?: string; loPlus?: string; loMinus?: string; sda?: string; scl?: string; bat?: string; sck?: string; miso?: string; mosi?: string; ecgCs?: string; ecgInt?: string }
  /** Provisioning time, epoch ms: a lower bound for the clock until the first sync. */
  t?: number
  /** Battery divider ratio Vcell/Vpin (default DEFAULTS.batDivider); 0 = no battery sense. */
  batDivider?: number
}
