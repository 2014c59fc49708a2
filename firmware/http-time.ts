/**
 * GET /api/time from the gateway over a plain socket (HTTP/1.0, so the server closes
 * the connection and no chunked decoding is needed). Espruino's http module is not
 * needed for one tiny request, and this works the same on every build.
 *
 * Espruino's net.connect throws synchronously when the port refuses ("Unable to create
 * socket") or the name does not resolve ("Unable to locate host") (issue 12): that is caught
 * and reported through the callback like any other failure, always asynchronously. The fetch
 * runs before every MQTT attempt, so it is retried with the MQTT client's backoff.
 */
export interface Dialer {
  connect(opts: { host: string; port: number }, onOpen: () => void): {
    write(s: string): unknown
    end(): void
    on(ev: string, cb: (a?: any) => void): void
  }
}

export function parseTimeResponse(raw: string): number {
  const sp = raw.indexOf(' ')
  const code = raw.substr(sp + 1, 3)
  if (code !== '200') throw new Error('time: HTTP ' + code)
  const body = raw.substr(raw.indexOf('\r\n\r\n') + 4)
  const j = JSON.parse(body)
  if (!(typeof j.now === 'number' && j.now > 0)) throw new Error('time: no "now" in ' + body.substr(0, 40))
  return j.now
}

export function fetchTime(net: Dialer, host: string, port: number, boardMs: () => number, timeoutMs: number,
  cb: (err: string | null, serverMs: number, rttMs: number, atBoardMs: number) => void): void {
  const t0 = boardMs()
  let buf = ''
  let done = false
  const finish = function (err: string | null) {
    if (done) return
    done = true
    clearTimeout(timer)
    const t1 = boardMs()
    if (err) return cb(err, 0, 0, t1)
    try {
      cb(null, parseTimeResponse(buf), t1 - t0, t1)
    } catch (e) {
      cb('' + e, 0, 0, t1)
    }
  }
  let sock: ReturnType<Dialer['connect']> | null = null
  const timer = setTimeout(function () {
    finish('time: no answer in ' + timeoutMs + ' ms')
    try { if (sock) sock.end() } catch (e) { /* already closed */ }
  }, timeoutMs)
  try {
    const s = net.connect({ host: host, port: port }, function () {
      try {
        s.write('GET /api/time HTTP/1.0\r\nHost: ' + host + '\r\n\r\n')
      } catch (e) {
        finish('time: ' + e)
      }
    })
    sock = s
    s.on('data', function (d: string) { buf += d })
    s.on('close', function () { finish(null) })
    s.on('error', function (e: any) { finish('time: ' + (e && e.message ? e.message : e)) })
  } catch (e) {
    // Refused or no such host: the callback still comes from a callback of its own.
    const why = 'time: connect failed: ' + e
    setTimeout(function () { finish(why) }, 0)
  }
}
