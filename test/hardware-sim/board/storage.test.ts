import t from 'tap'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { makeBoard } from './helpers.ts'
import { VirtualBoard } from '../../../hardware-sim/board/board.ts'
import { STORAGE_BYTES } from '../../../hardware-sim/board/storage.ts'

t.test('write/read/readJSON/readArrayBuffer/list/erase/getStats, with Espruino error messages', async (t) => {
  const { board, storagePath } = makeBoard(t)
  board.load(`
    var S = require('Storage');
    S.write('a.txt', 'hello');
    S.writeJSON('cfg.json', { n: 1, s: 'x' });
    S.write('bin', new Uint8Array([0, 255, 7]));
    print(S.read('a.txt'), S.readJSON('cfg.json').s, new Uint8Array(S.readArrayBuffer('bin')).join(','), S.read('missing'));
    print(S.list().join('|'));
    S.write('log', 'AB', 0, 6);
    S.write('log', 'CD', 2);
    print(JSON.stringify(S.read('log')));
    try { S.write('log', 'XY', 2) } catch (e) { print(e.message) }
    try { S.write('log', 'TOOLONG', 4) } catch (e) { print(e.message) }
    S.erase('a.txt');
    var st = S.getStats();
    print(S.list().join('|'), st.totalBytes, st.fileCount, st.trashCount > 0, S.getFree() < st.totalBytes);
    S.compact();
    print(S.getStats().trashCount, S.read('cfg.json'));
  `)
  const l = board.console.lines
  t.equal(l[0], 'hello x 0,255,7 undefined')
  t.equal(l[1], 'a.txt|cfg.json|bin')
  t.equal(l[2], JSON.stringify('ABCD\xff\xff'))
  t.equal(l[3], 'File already written with different data')
  t.equal(l[4], 'Too much data for file size')
  t.equal(l[5], `cfg.json|bin|log ${STORAGE_BYTES} 3 true true`)
  t.equal(l[6], '0 {"n":1,"s":"x"}')
  t.equal(statSync(storagePath).size, STORAGE_BYTES, 'backing file has the ESP32 storage size')
})

t.test('state persists in the backing file across boards; .boot0 and .bootcde run at boot, then E.on("init")', async (t) => {
  const { board, storagePath } = makeBoard(t)
  board.load(`var S = require('Storage'); S.write('.boot0', "print('boot0 ran')"); E.setBootCode("E.on('init', function () { print('init', require('Storage').read('k')) }); print('bootcde ran')"); S.write('k', 'v1');`)
  board.close()
  const b2 = new VirtualBoard({ id: 'again', storagePath })
  t.teardown(() => b2.close())
  b2.boot()
  t.same(b2.console.lines, ['boot0 ran', 'bootcde ran', 'init v1'])
})

t.test('save() keeps uploaded code across a reboot; reset() starts empty', async (t) => {
  const { board } = makeBoard(t)
  board.load(`var x = 41; setInterval(function () { print('alive', x + 1) }, 1000);`)
  board.load('save()')
  board.boot()
  board.advance(1000)
  t.equal(board.console.lines.at(-1), 'alive 42')
  board.reset()
  board.advance(2000)
  t.equal(board.console.lines.at(-1), 'alive 42', 'nothing runs after reset()')
  board.load(`print(typeof x)`)
  t.equal(board.console.lines.at(-1), 'undefined')
})

t.test('brown-out during a write leaves a torn file and reboots; the firmware sees the torn data', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var S = require('Storage');
    S.writeJSON('state.json', { counter: 1 });
    setTimeout(function () { S.writeJSON('state.json', { counter: 2, pad: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }); print('not reached') }, 100);
  `)
  board.brownOut(0.5)
  board.advance(200)
  t.notMatch(board.console.text(), 'not reached')
  t.match(board.console.text(), 'brown-out: rebooting')
  t.equal(board.bootCount, 1)
  board.load(`var S = require('Storage'); var raw = S.read('state.json'); print(raw.length, raw.charCodeAt(raw.length - 1));
    try { S.readJSON('state.json'); print('parsed') } catch (e) { print('torn', e instanceof SyntaxError) }
    print(S.readJSON('state.json', true));`)
  const l = board.console.lines.slice(-3)
  t.match(l[0], /^\d+ 255$/, 'torn tail still erased (0xFF)')
  t.equal(l[1], 'torn true')
  t.equal(l[2], 'undefined')
})

t.test('a brown-out reboots the board even when the firmware catches the failed write', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var S = require('Storage');
    setTimeout(function () {
      try { S.write('frame', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') } catch (e) { print('caught ' + e) }
    }, 100);
  `)
  board.brownOut(0.5)
  board.advance(200)
  t.match(board.console.text(), 'brown-out: rebooting', 'power loss is not an exception a try/catch can absorb')
  t.equal(board.bootCount, 1)
})

t.test('flash full: new files fail with Espruino\'s message and getFree reports 0', async (t) => {
  const { board } = makeBoard(t)
  board.flashFull(true)
  board.load(`var S = require('Storage'); try { S.write('x', 'data') } catch (e) { print(e.message) } print(S.getFree())`)
  t.same(board.console.lines, ['Unable to find or create file', '0'])
  board.flashFull(false)
  board.load(`require('Storage').write('x', 'data'); print(require('Storage').read('x'))`)
  t.equal(board.console.lines.at(-1), 'data')
})

t.test('the storage area really fills up: 896 KB minus headers', async (t) => {
  const { board } = makeBoard(t)
  board.load(`var S = require('Storage'); var chunk = new Uint8Array(60000); var n = 0;
    try { for (var i = 0; i < 100; i++) { S.write('f' + i, chunk); n++ } } catch (e) { print(e.message) } print(n, S.getFree() < 60032);`)
  t.same(board.console.lines, ['Unable to find or create file', '15 true'])
})

t.test('StorageFile: open w/a/r, write across page-sized chunks, read, readLine, getLength, erase', async (t) => {
  const { board } = makeBoard(t)
  board.load(`
    var S = require('Storage');
    var f = S.open('log', 'w');
    for (var i = 0; i < 500; i++) f.write('line ' + i + '\\n');
    var a = S.open('log', 'a'); a.write('last\\n');
    var r = S.open('log', 'r');
    print(r.readLine(), r.readLine(), r.getLength());
    var all = ''; var s; var rr = S.open('log', 'r'); while ((s = rr.read(1000)) !== undefined) all += s;
    print(all.split('\\n').length, all.slice(-5));
    print(S.list(/log/).length > 1);
    try { a.write('bad\\xff') } catch (e) { print(e.message) }
    r.erase(); print(S.list().length, S.open('log', 'r').read(10));
  `)
  const l = board.console.lines
  t.equal(l[0], 'line 0\n line 1\n 4395')
  t.equal(l[1], '502 last\n')
  t.equal(l[2], 'true')
  t.equal(l[3], "StorageFile can't contain character code 255")
  t.equal(l[4], '0 undefined')
})

t.test('a corrupt backing file is refused with a clear error', async (t) => {
  const { dir } = makeBoard(t)
  const { writeFileSync } = await import('node:fs')
  const p = join(dir, 'big.bin')
  writeFileSync(p, Buffer.alloc(STORAGE_BYTES + 1))
  t.throws(() => new VirtualBoard({ id: 'x', storagePath: p }), /is 917505 bytes, expected at most 917504/)
})
