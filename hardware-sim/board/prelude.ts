/**
 * The JavaScript that runs first inside every board context. It strips what
 * Espruino lacks (facts file), hooks typed-array allocation and array growth
 * for the memory budget, and builds the few in-context objects that must be
 * of the context's own realm (Pins, event emitters, the virtual Date). It
 * uses nothing it removes, and it keeps its own references before removing.
 *
 * It evaluates to a function taking the host bridge `h` and returning the
 * intrinsics the host needs to create context-realm values.
 */
export const PRELUDE = String.raw`(function (h) {
  'use strict';
  var G = globalThis;
  var defProp = Object.defineProperty;
  var TA = Object.getPrototypeOf(Uint8Array);
  var realSlice = Array.prototype.slice;
  var realPush = Array.prototype.push;
  var intr = {
    Object: Object, Array: Array, Error: Error, JSON: JSON, ArrayBuffer: ArrayBuffer,
    Promise: Promise, Function: Function, Date: Date, eval: G.eval
  };

  // ---- what Espruino does not have ----
  ['Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Symbol', 'BigInt',
   'BigInt64Array', 'BigUint64Array', 'Proxy', 'Reflect', 'TextEncoder', 'TextDecoder', 'Intl',
   'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'AggregateError', 'console', 'gc',
   'queueMicrotask', 'structuredClone'].forEach(function (n) {
    try { delete G[n]; } catch (e) { defProp(G, n, { value: undefined }); }
  });
  delete Array.from; delete Array.of; delete TA.from; delete TA.of;
  // EPSILON and the SAFE_INTEGER constants are non-configurable on V8's Number:
  // the global Number becomes a wrapper without them (same prototype, so
  // instanceof and Number.prototype methods are unchanged).
  var RealNumber = Number;
  var NumberW = function Number(v) {
    var x = arguments.length ? RealNumber(v) : 0;
    return new.target ? new RealNumber(x) : x;
  };
  ['MAX_VALUE', 'MIN_VALUE', 'NaN', 'NEGATIVE_INFINITY', 'POSITIVE_INFINITY', 'parseFloat', 'parseInt', 'isFinite', 'isNaN'].forEach(function (n) {
    defProp(NumberW, n, { value: RealNumber[n], writable: false, configurable: true });
  });
  defProp(NumberW, 'prototype', { value: RealNumber.prototype, writable: false });
  defProp(G, 'Number', { value: NumberW, writable: true, configurable: true });
  ['imul', 'clz32', 'trunc', 'fround'].forEach(function (n) { delete Math[n]; });
  delete Object.freeze;
  delete ArrayBuffer.prototype.slice;
  // Espruino resolves built-in methods through instances: [].slice works,
  // Array.prototype.slice is undefined.
  defProp(Array.prototype, 'slice', {
    get: function () { return this === Array.prototype ? undefined : realSlice; },
    set: function (v) { defProp(this, 'slice', { value: v, writable: true, configurable: true }); },
    configurable: true
  });

  // ---- memory budget hooks ----
  ['Uint8Array', 'Int8Array', 'Uint8ClampedArray', 'Uint16Array', 'Int16Array', 'Uint32Array',
   'Int32Array', 'Float32Array', 'Float64Array'].forEach(function (name) {
    var Base = G[name];
    var bpe = Base.BYTES_PER_ELEMENT;
    var Sub = class extends Base {
      constructor(a, b, c) {
        var n = -1;
        if (typeof a === 'number') n = a;
        else if (a && typeof a === 'object' && typeof a.byteLength !== 'number' && typeof a.length === 'number') n = a.length;
        if (n >= 0) h.alloc(n * bpe);
        if (b === undefined && c === undefined) super(a); else super(a, b, c);
        if (n >= 0) h.track(this);
      }
    };
    defProp(Sub, 'name', { value: name });
    G[name] = Sub;
    intr[name] = Sub;
  });
  var RealAB = ArrayBuffer;
  var AB = class extends RealAB {
    constructor(n) { h.alloc(n); super(n); h.track(this); }
  };
  defProp(AB, 'name', { value: 'ArrayBuffer' });
  G.ArrayBuffer = AB; intr.ArrayBuffer = AB;
  defProp(Array.prototype, 'push', {
    value: function push() {
      var n = realPush.apply(this, arguments);
      if ((n & 63) < arguments.length) h.grow(this);
      return n;
    }, writable: true, configurable: true
  });

  // ---- virtual clock: Date follows the board's wall clock ----
  var RealDate = Date;
  var VDate = class Date extends RealDate {
    constructor(a, b, c, d, e, f, g) {
      var n = arguments.length;
      if (n === 0) super(h.wallMs());
      else if (n === 1) super(a);
      else super(a, b, c === undefined ? 1 : c, d || 0, e || 0, f || 0, g || 0);
    }
    static now() { return h.wallMs(); }
  };
  G.Date = VDate; intr.Date = VDate;
  // Espruino's ESP32 port never seeds its generator: same sequence after every boot.
  var seed = 0x2545f491;
  Math.random = function random() {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };

  // ---- event emitters (Espruino objects have on/emit/removeListener) ----
  function Emitter() {}
  Emitter.prototype.on = function (ev, fn) {
    var k = '#on' + ev;
    if (!this[k]) defProp(this, k, { value: [], writable: true, configurable: true });
    this[k].push(fn);
    return this;
  };
  Emitter.prototype.addListener = Emitter.prototype.on;
  Emitter.prototype.emit = function (ev) {
    var l = this['#on' + ev];
    if (!l) return false;
    var args = realSlice.call(arguments, 1);
    var fns = realSlice.call(l);
    for (var i = 0; i < fns.length; i++) fns[i].apply(this, args);
    return true;
  };
  Emitter.prototype.removeListener = function (ev, fn) {
    var l = this['#on' + ev];
    if (l) { var i = l.indexOf(fn); if (i >= 0) l.splice(i, 1); }
    return this;
  };
  Emitter.prototype.removeAllListeners = function (ev) {
    if (ev === undefined) { var self = this; Object.getOwnPropertyNames(this).forEach(function (k) { if (k.indexOf('#on') === 0) delete self[k]; }); }
    else delete this['#on' + ev];
    return this;
  };
  intr.Emitter = Emitter;

  // ---- pins ----
  function Pin(n) { defProp(this, 'n', { value: n }); }
  Pin.prototype.valueOf = function () { return this.n; };
  Pin.prototype.toString = function () { return 'D' + this.n; };
  Pin.prototype.toJSON = function () { return 'D' + this.n; };
  Pin.prototype.read = function () { return G.digitalRead(this); };
  Pin.prototype.write = function (v) { G.digitalWrite(this, v); };
  Pin.prototype.set = function () { G.digitalWrite(this, 1); };
  Pin.prototype.reset = function () { G.digitalWrite(this, 0); };
  Pin.prototype.mode = function (m) { G.pinMode(this, m); };
  Pin.prototype.getMode = function () { return G.getPinMode(this); };
  Pin.prototype.analog = function () { return G.analogRead(this); };
  for (var p = 0; p < 40; p++) defProp(G, 'D' + p, { value: new Pin(p), enumerable: false, configurable: true });
  intr.Pin = Pin;
  return intr;
})`
