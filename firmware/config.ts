/**
 * The provisioned configuration the firmware reads from Storage (`mh.cfg`, JSON) at boot.
 * Kept apart from main.ts so Node code (provisioning, the simulator rig) can share the type
 * without running the firmware.
 */
export const CFG_FILE = 'mh.cfg'

export interface Config {
  /** Device ID (17 chars, protocol/portable/device-id.ts). */
  id: string
  /** 'se' (ATECC608, ES256) or 'bare' (HMAC-SHA256 with `secret`). */
  profile: string
  /** Bare profile: HMAC secret, hex (32 bytes). */
  secret?: string
  /** SE key slot (default 0). */
  slot?: number
  wifi?: { ssid: string; pass?: string }
  /** Gateway: MQTT port for frames, HTTP port for GET /api/time; fp = TLS certificate SHA-256. */
  gw: { host: string; mqttPort: number; httpPort: number; tls?: boolean; fp?: string }
  /** ECG rate, 125..500 Hz (default 250). */
  ecgHz?: number
  /** Seconds per frame, 1..5 (default 1). */
  windowS?: number
  /** Flash ring segments of 16 KB (default 12). */
  ringSegments?: number
  /** Pin names (defaults: ECG D36, LO+ D34, LO- D35, SDA D21, SCL D22, battery divider D39). */
  pins?: { ecg?: string; loPlus?: string; loMinus?: string; sda?: string; scl?: string; bat?: string }
  /** Provisioning time, epoch ms: a lower bound for the clock until the first sync. */
  t?: number
  /** Battery divider ratio Vcell/Vpin (default 2); 0 = no battery sense. */
  batDivider?: number
}
