/**
 * A reboot while WiFi is still associating: the association dies with the interpreter and
 * the next boot's Wifi.connect() succeeds (found by the fleet simulator: a board resumed from
 * an earlier run booted, started connecting, was rebooted, and never connected again).
 */
import t from 'tap'
import { makeBoard } from './helpers.ts'

t.test('Wifi.connect after a reboot in the middle of an association', async (t) => {
  const { board } = makeBoard(t, { wifi: { ssid: 'clinic', password: 'pw' } })
  const prog = `require('Wifi').connect('clinic', { password: 'pw' }, function (err) { print('wifi cb ' + err) });`
  board.load(prog)
  board.advance(100) // association takes 1.5 s: still connecting
  board.reset()
  board.load(prog)
  board.advance(3000)
  t.ok(board.console.lines.includes('wifi cb null'), `connected after the reboot (${board.console.lines.join(' | ')})`)
})
