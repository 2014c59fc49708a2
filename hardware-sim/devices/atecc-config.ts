/**
 * ATECC608A configuration zone layout (128 bytes; ATECC608A datasheet
 * "Configuration Zone" table) and the default contents this simulator ships
 * with: slots 0–4 hold P-256 private keys (external and internal Sign,
 * GenKey allowed, never readable), slots 5–7 secret symmetric keys, slots
 * 8–15 clear read/write data (certificates, public keys), as in Microchip's
 * usual TLS-style configurations. Zones start unlocked, like a blank part
 * from the factory; provisioning writes config, locks it, runs GenKey and
 * locks the data zone.
 */

/** Byte offsets in the configuration zone. */
export const CFG = {
  SN0: 0, // SN[0:3]; SN[0:1] are always 01 23
  REVNUM: 4, // 4 bytes, returned by Info(Revision)
  SN4: 8, // SN[4:8]; SN[8] is always EE
  AES_ENABLE: 13,
  I2C_ENABLE: 14,
  I2C_ADDRESS: 16, // 8-bit form (7-bit address << 1)
  COUNT_MATCH: 18,
  CHIP_MODE: 19,
  SLOT_CONFIG: 20, // 16 × 2 bytes, little-endian
  COUNTER0: 52,
  COUNTER1: 60,
  USE_LOCK: 68,
  VOLATILE_KEY_PERMISSION: 69,
  SECURE_BOOT: 70,
  KDF_IV_LOC: 72,
  USER_EXTRA: 84,
  USER_EXTRA_ADD: 85,
  LOCK_VALUE: 86, // data + OTP zones: 0x55 unlocked, 0x00 locked
  LOCK_CONFIG: 87, // configuration zone: 0x55 unlocked, 0x00 locked
  SLOT_LOCKED: 88, // 16 bits, bit = 0 means that slot is locked
  CHIP_OPTIONS: 90,
  X509_FORMAT: 92,
  KEY_CONFIG: 96, // 16 × 2 bytes, little-endian
} as const

export const UNLOCKED = 0x55
export const LOCKED = 0x00

/** Info(Revision) of an ATECC608A. */
export const REVISION = Uint8Array.of(0x00, 0x00, 0x60, 0x02)

/** Data zone slot sizes: 0–7 hold 36 bytes, 8 holds 416, 9–15 hold 72. */
export function slotSize(slot: number): number {
  return slot < 8 ? 36 : slot === 8 ? 416 : 72
}

// KeyConfig bits
export const KEYCFG_PRIVATE = 0x0001
export const KEYCFG_PUBINFO = 0x0002
export const KEYCFG_KEYTYPE_SHIFT = 2 // 3 bits: 4 = P-256, 6 = AES, 7 = SHA/other
export const KEYCFG_LOCKABLE = 0x0020
export const KEYTYPE_P256 = 4

// SlotConfig bits
export const SLOTCFG_IS_SECRET = 0x0080
export const SLOTCFG_ENCRYPT_READ = 0x0040
/** For ECC private key slots, ReadKey bit 0: Sign with an external message allowed. */
export const SLOTCFG_EXT_SIGN = 0x0001
/** WriteConfig occupies bits 12–15. For private key slots, bit 13 allows GenKey to create a key. */
export const SLOTCFG_WRITECFG_SHIFT = 12
export const WRITECFG_GENKEY = 0x2

export function slotConfig(cfg: Uint8Array, slot: number): number {
  return cfg[CFG.SLOT_CONFIG + 2 * slot] | (cfg[CFG.SLOT_CONFIG + 2 * slot + 1] << 8)
}

export function keyConfig(cfg: Uint8Array, slot: number): number {
  return cfg[CFG.KEY_CONFIG + 2 * slot] | (cfg[CFG.KEY_CONFIG + 2 * slot + 1] << 8)
}

export function isP256Private(cfg: Uint8Array, slot: number): boolean {
  const kc = keyConfig(cfg, slot)
  return (kc & KEYCFG_PRIVATE) !== 0 && ((kc >> KEYCFG_KEYTYPE_SHIFT) & 7) === KEYTYPE_P256
}

export function slotIsLocked(cfg: Uint8Array, slot: number): boolean {
  const bits = cfg[CFG.SLOT_LOCKED] | (cfg[CFG.SLOT_LOCKED + 1] << 8)
  return (bits & (1 << slot)) === 0
}

/**
 * A fresh configuration zone. `serialRandom` supplies the 6 per-part serial
 * bytes (SN[2:3] and SN[4:7]); `i2cAddress` is the 7-bit address.
 */
export function defaultConfig(serialRandom: Uint8Array, i2cAddress: number): Uint8Array {
  const c = new Uint8Array(128)
  c.set([0x01, 0x23, serialRandom[0], serialRandom[1]], CFG.SN0)
  c.set(REVISION, CFG.REVNUM)
  c.set([serialRandom[2], serialRandom[3], serialRandom[4], serialRandom[5], 0xee], CFG.SN4)
  c[CFG.AES_ENABLE] = 0x01
  c[CFG.I2C_ENABLE] = 0x01 // I2C, not single-wire
  c[CFG.I2C_ADDRESS] = (i2cAddress << 1) & 0xff
  // SlotConfig / KeyConfig per slot, little-endian words.
  const slots: Array<[number, number]> = []
  // 0–4: P-256 private: ReadKey=3 (ext+int sign), IsSecret, WriteConfig=GenKey | KeyConfig Private, PubInfo, P-256, Lockable
  for (let i = 0; i < 5; i++) slots.push([0x2083, 0x0033])
  // 5–7: secret SHA/HMAC keys, never written in the clear after lock | KeyType 7
  for (let i = 5; i < 8; i++) slots.push([0x8f8f, 0x001c])
  // 8–15: clear data, read and write always | KeyType 7, Lockable
  for (let i = 8; i < 16; i++) slots.push([0x0000, 0x003c])
  slots.forEach(([sc, kc], i) => {
    c[CFG.SLOT_CONFIG + 2 * i] = sc & 0xff
    c[CFG.SLOT_CONFIG + 2 * i + 1] = sc >> 8
    c[CFG.KEY_CONFIG + 2 * i] = kc & 0xff
    c[CFG.KEY_CONFIG + 2 * i + 1] = kc >> 8
  })
  // Monotonic counters at their factory value (all ones in the low word).
  c.set([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], CFG.COUNTER0)
  c.set([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], CFG.COUNTER1)
  c[CFG.KDF_IV_LOC] = 0xf0
  c[CFG.LOCK_VALUE] = UNLOCKED
  c[CFG.LOCK_CONFIG] = UNLOCKED
  c[CFG.SLOT_LOCKED] = 0xff
  c[CFG.SLOT_LOCKED + 1] = 0xff
  return c
}
