/**
 * The ANSI/AAMI EC57 beat classes of MIT-BIH annotation codes, and the
 * inter-patient split of de Chazal et al. (2004) that beat classifiers are
 * trained and judged on (DS1 to develop, DS2 to score blind).
 */
import type { BeatClass } from '../signal/beat-class.ts'

/** EC57 class of an MIT annotation code, or undefined for a code that is not a beat. */
export function aamiClass(code: number): BeatClass | undefined {
  switch (code) {
    case 1: case 2: case 3: case 11: case 34: return 'N' // N, L, R, j (nodal escape), e (atrial escape)
    case 4: case 7: case 8: case 9: return 'S' // a (aberrated APC), J (nodal premature), A (APC), S (SVPB)
    case 5: case 10: return 'V' // V (PVC), E (ventricular escape)
    case 6: return 'F' // fusion of ventricular and normal
    case 12: case 13: case 38: return 'Q' // paced, unclassifiable, fusion of paced and normal
    default: return undefined
  }
}

/** DS1 of the inter-patient split (the paced records 102, 104, 107, 217 are in neither half). */
export const DS1_RECORDS: ReadonlyArray<string> = ['101', '106', '108', '109', '112', '114', '115', '116', '118', '119', '122', '124', '201', '203', '205', '207', '208', '209', '215', '220', '223', '230']
