import t from 'tap'
import { makeBoard } from './helpers.ts'
import type { SPIDevice } from '../../../hardware-sim/hardware.ts'
import { Max30003 } from '../../../hardware-sim/devices/max30003.ts'

/** Echoes each byte + 1 and records the transactions with their virtual times. */
class Echo implements SPIDevice {
  readonly log: { tx: number[]; at: number }[] = []
  transfer(tx: Uint8Array, nowMs: number): Uint8Array {
    this.log.push({ tx: [...tx], at: nowMs })
    return tx.map((b) => (b + 1) & 0xff)
  }
}

t.test('SPI: send frames one transaction on its chip select and answers in the type it was given', async (t) => {
  const a = new Echo()
  const b = new Echo()
  const { board } = makeBoard(t, { spi: { SPI2: [{ cs: 5, device: a }, { cs: 15, device: b }] } })
  board.load(`
    SPI2.setup({ sck: D18, miso: D19, mosi: D23, baud: 4000000 });
    setTimeout(function () {
      var r = SPI2.send(new Uint8Array([1, 2, 3]), D5);
      print('u8', r instanceof Uint8Array, r.join(','));
      print('arr', SPI2.send([7, 8], D15).join(','));
      print('num', SPI2.send(0x41, D5));
      print('str', JSON.stringify(SPI2.send('AB', D5)));
      SPI2.write(9, [10, 11], D15);
      digitalWrite(D15, 0); print('manual', SPI2.send([1], undefined).join(',')); digitalWrite(D15, 1);
      print('none', SPI2.send([1, 2]).join(','));
    }, 100);
  `)
  board.advance(150)
  const out = board.console.text()
  t.match(out, 'u8 true 2,3,4')
  t.match(out, 'arr 8,9')
  t.match(out, 'num 66')
  t.match(out, 'str "BC"')
  t.match(out, 'manual 2', 'a chip select driven low by hand selects its device')
  t.match(out, 'none 255,255', 'no device selected: MISO floats high')
  t.same(a.log.map((l) => l.tx), [[1, 2, 3], [0x41], [0x41, 0x42]])
  t.same(b.log.map((l) => l.tx), [[7, 8], [9, 10, 11], [1]])
  t.equal(a.log[0].at, 100, 'the device sees the board virtual time')
})

t.test('SPI: a bus used before setup() refuses', async (t) => {
  const { board } = makeBoard(t, { spi: { SPI1: [{ cs: 5, device: new Echo() }] } })
  board.load(`try { SPI1.send([1], D5) } catch (e) { print('err', e.message) }`)
  t.match(board.console.text(), 'err SPI1 not set up')
})

t.test('SPI: the MAX30003 model answers on the virtual bus (INFO after a NO_OP)', async (t) => {
  const ecg = new Max30003({ source: { mv: () => 0, leadOff: () => false } })
  const { board } = makeBoard(t, { spi: { SPI2: [{ cs: 5, device: ecg }] } })
  board.load(`
    SPI2.setup({ baud: 4000000 });
    SPI2.send([0xff, 0, 0, 0], D5);
    var r = SPI2.send([(0x0f << 1) | 1, 0, 0, 0], D5);
    print('info', ((r[1] << 16) | (r[2] << 8) | r[3]).toString(16));
  `)
  t.match(board.console.text(), /info 5[0-9a-f]3000/)
})
