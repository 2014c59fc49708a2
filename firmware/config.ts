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
  /** ECG sampling rate, Hz (AD8232 on an ADC pin, one timer tick per sample). */
  ecgHz: 250,
  /** Seconds of samples per frame. */
  windowS: 1,
  /** PPG rate the MAX30102 is set up for, Hz, and how often its FIFO is drained, ms. */
  ppgHz: 100,
  ppgPollMs: 100,
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
  /** I2C1 speed and addresses: ATECC608 (its factory address) and MAX30102. */
  i2cBitrate: 100000,
  seAddress: 0x60,
  ppgAddress: 0x57,
  /** Serial speed of the board's Espruino console (`mhealth flash` / `provision`). */
  baud: 115200,
}

/** What a configuration (mh.cfg, provisioning, the gateway's config message) may ask for. */
export const RANGE = {
  ecgHzMin: 125,
  ecgHzMax: 500,
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
  /** ECG rate, RANGE.ecgHzMin..Max Hz (default DEFAULTS.ecgHz). */
  ecgHz?: number
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
