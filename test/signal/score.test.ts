import t from 'tap'
import { scoreBeats } from '../../signal/score.ts'

t.test('EC57 matching: within tolerance is TP, outside is FN + FP', async (t) => {
  t.same(scoreBeats([100, 200, 300], [100, 254, 356], { tolerance: 54 }), { tp: 2, fn: 1, fp: 1, se: 2 / 3, ppv: 2 / 3 })
  const s = scoreBeats([100, 200], [100, 200], { tolerance: 0 })
  t.equal(s.tp, 2)
})

t.test('each beat matches once; the nearer partner wins', async (t) => {
  // two detections near one reference beat: one TP, one FP
  t.match(scoreBeats([100], [90, 101], { tolerance: 20 }), { tp: 1, fn: 0, fp: 1 })
  // detection between two references goes to the nearer one
  t.match(scoreBeats([100, 140], [135], { tolerance: 50 }), { tp: 1, fn: 1, fp: 0 })
})

t.test('warm-up window and empty inputs', async (t) => {
  t.match(scoreBeats([10, 400, 800], [20, 400, 800], { tolerance: 5, from: 360 }), { tp: 2, fn: 0, fp: 0 })
  const e = scoreBeats([], [], { tolerance: 5 })
  t.ok(Number.isNaN(e.se) && Number.isNaN(e.ppv))
  t.match(scoreBeats([1, 2], [], { tolerance: 5 }), { tp: 0, fn: 2, fp: 0, se: 0 })
  t.throws(() => scoreBeats([], [], { tolerance: -1 }), /expected tolerance >= 0, got -1/)
})
