import t from 'tap'
import vm from 'node:vm'
import { instrument } from '../../../hardware-sim/cost/instrument.ts'
import { CostModel } from '../../../hardware-sim/cost/model.ts'
import { CostMeter, installCounter, OUTSIDE } from '../../../hardware-sim/cost/meter.ts'

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))

t.test('a callback costs its units at µs/unit plus its native µs plus the dispatch', async (t) => {
  const model = new CostModel('central', { usPerUnit: 2, callbackUnits: 10 })
  const counter = { u: 1000 }
  const m = new CostMeter(model, counter)
  t.equal(m.elapsedUs(), 0)
  m.begin('tick')
  t.ok(m.open)
  t.ok(close(m.elapsedUs(), 20), 'dispatch: 10 units')
  counter.u += 50
  m.native(7)
  t.ok(close(m.elapsedUs(), 20 + 100 + 7), 'running total for getTime() inside the callback')
  t.ok(close(m.end(), 127))
  t.notOk(m.open)
  m.begin('tick')
  counter.u += 5
  t.ok(close(m.end(), 30))
  m.begin('frame')
  t.ok(close(m.end(), 20))
  t.same(m.totals().tick, { count: 2, sumUs: 157, maxUs: 127, units: 55 })
  t.same(m.report().map((r) => r.name), ['tick', 'frame'])
  t.ok(close(m.report()[0]!.meanUs, 78.5))
  m.resetTotals()
  t.same(m.totals(), {})
})

t.test('a callback run inside another is charged on its own, not twice', async (t) => {
  const counter = { u: 0 }
  const m = new CostMeter(new CostModel('central', { usPerUnit: 1, callbackUnits: 0 }), counter)
  m.begin('outer')
  counter.u += 10
  m.begin('inner')
  counter.u += 5
  m.native(3)
  t.ok(close(m.elapsedUs(), 18), 'the clock sees both')
  t.ok(close(m.end(), 8))
  counter.u += 1
  t.ok(close(m.elapsedUs(), 19))
  t.ok(close(m.end(), 11), 'outer: 10 + 1 units, the inner 8 µs left out')
})

t.test('misuse is refused; native charges outside callbacks are kept apart', async (t) => {
  const m = new CostMeter(new CostModel(), { u: 0 })
  t.throws(() => m.end(), /no callback is open/)
  t.throws(() => m.begin(''), TypeError)
  t.throws(() => m.native(-1), RangeError)
  t.throws(() => m.native(NaN), RangeError)
  m.native(12)
  t.same(m.totals()[OUTSIDE], { count: 1, sumUs: 12, maxUs: 12, units: 0 })
  t.throws(() => new CostMeter(new CostModel(), {} as { u: number }), TypeError)
})

t.test('installCounter: the instrumented code increments a counter that lives in the context', async (t) => {
  const ctx = vm.createContext({})
  const counter = installCounter(ctx)
  t.equal(counter.u, 0)
  t.notOk(Object.keys(vm.runInContext('globalThis', ctx)).includes('__cost'), 'not enumerable: invisible to the firmware walking its globals')
  const m = new CostMeter(new CostModel('central', { usPerUnit: 1, callbackUnits: 0 }), counter)
  const code = instrument('function f(n) { var s = 0; for (var i = 0; i < n; i++) s += i; return s }', { callUnits: 40 }).code
  vm.runInContext(code, ctx)
  const f = vm.runInContext('f', ctx) as (n: number) => number
  m.begin('f(10)')
  t.equal(f(10), 45)
  const ten = m.end()
  m.begin('f(20)')
  f(20)
  const twenty = m.end()
  t.ok(ten > 40 && twenty > ten, `f(10) ${ten} units, f(20) ${twenty}`)
  t.ok(close(twenty - ten, 10 * (3 + 2 + 3 + 4)), 'ten more iterations: test + update + 3 + `s += i;`')
  t.throws(() => installCounter(ctx, 'not a name'), TypeError)
})
