/**
 * What the device models read from the simulated patient. Sources are
 * deterministic functions of time (ms since the source started) given their seed;
 * callers sample them in increasing time order.
 */

/** The ECG at the electrodes, as the AD8232 sees it. */
export interface EcgSource {
  /** Lead potential in millivolts at time t. */
  mv(tMs: number): number
  /** True while an electrode is off (the AD8232 raises LO+/LO-). */
  leadOff(tMs: number): boolean
}

/**
 * Light at the MAX30102's photodiode. Values are the fraction of each LED's
 * emitted light that reaches the photodiode (0..1): DC from tissue, AC from
 * pulsating arterial blood (Beer–Lambert), plus motion. `ambient` is ambient
 * light as a fraction of full scale at the reference LED current. The device
 * model turns these into ADC counts using its LED currents, pulse width and range.
 */
export interface PpgSource {
  light(tMs: number): { red: number; ir: number; ambient: number }
  fingerOn(tMs: number): boolean
}
