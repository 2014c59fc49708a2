/**
 * The dashboard's browser app (bundled by dashboard/build.ts with esbuild).
 *
 * Views by URL hash: #/ward (tiles with live waveforms), #/patient/ID (trends,
 * frames, in-browser proof check, FHIR export), #/devices and #/consent (admin).
 * Live data: one EventSource on /api/dash/live for the ward and patient views.
 *
 * Waveform playout: every sample gets its own time (frame t0 + i / rate); the
 * canvas shows the last few seconds up to a playout point that trails the
 * newest data by a fixed delay. A frame that arrives late, but within the
 * delay, lands in its place before the playout point reaches it, so the trace
 * has no gap. The playout point is tied to the browser clock through the
 * smallest observed arrival latency per patient, so a board whose clock is off
 * still plays smoothly.
 */
import { checkProof } from '../../ledger/proof-check.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { ed25519 } from '@noble/curves/ed25519.js'

interface Vital { value: number; quality: number; source: 'device' | 'gateway' }
/** dashboard/vitals.ts EcgFindings, as JSON. */
interface EcgFindings { rhythm: string | null; pvcPerMin: number; windowS: number; quality: number; at: number }
interface LiveFrameMsg {
  patientId: string
  leafHash: string
  receivedMs: number
  vitals: { hr?: Vital; pr?: Vital; spo2?: Vital; ecg?: EcgFindings }
  deviceId: string
  seq: number
  t0: number
  ecgHz?: number
  ecg?: number[]
  ppgHz?: number
  ir?: number[]
  flags: number
  batteryMv?: number
}
interface Me { userId: string; role: 'clinician' | 'admin'; alarms: { spo2Low: number; hrLow: number; hrHigh: number }; now: number }
interface Patient { patientId: string; name: string; location?: string; deviceIds: string[]; consented: boolean }

const WINDOW_S = 5
const PLAYOUT_DELAY_MS = 1500
const STALE_MS = 5000

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => root.querySelector(sel) as T
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  for (const k of kids) e.append(k)
  return e
}

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch('/api/dash/' + path, {
    method: init.method ?? 'GET',
    credentials: 'same-origin',
    headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  })
  const j = (await res.json().catch(() => ({}))) as { error?: string }
  if (!res.ok) {
    if (res.status === 401 && path !== 'login') showLogin()
    throw new ApiError(res.status, j.error ?? `HTTP ${res.status}`)
  }
  return j as T
}

// ---------------------------------------------------------------- waveforms

/** Samples with their own times, for the last few seconds of one channel. */
class Trace {
  t: number[] = []
  v: number[] = []
  add(t0: number, hz: number, samples: number[]): void {
    // Keep time order even when a late frame arrives after a newer one.
    const items: [number, number][] = samples.map((x, i) => [t0 + (i * 1000) / hz, x])
    if (this.t.length === 0 || items[0][0] >= this.t[this.t.length - 1]) {
      for (const [a, b] of items) {
        this.t.push(a)
        this.v.push(b)
      }
    } else {
      const all: [number, number][] = this.t.map((a, i) => [a, this.v[i]])
      all.push(...items)
      all.sort((p, q) => p[0] - q[0])
      this.t = all.map((p) => p[0])
      this.v = all.map((p) => p[1])
    }
  }
  trim(before: number): void {
    let i = 0
    while (i < this.t.length && this.t[i] < before) i++
    if (i > 0) {
      this.t.splice(0, i)
      this.v.splice(0, i)
    }
  }
}

function drawTrace(c: HTMLCanvasElement, tr: Trace, until: number, color: string, invert: boolean): void {
  const w = (c.width = c.clientWidth || 400)
  const h = (c.height = c.clientHeight || 70)
  const g = c.getContext('2d')!
  g.clearRect(0, 0, w, h)
  const from = until - WINDOW_S * 1000
  let lo = Infinity
  let hi = -Infinity
  for (let i = 0; i < tr.t.length; i++) {
    if (tr.t[i] < from || tr.t[i] > until) continue
    if (tr.v[i] < lo) lo = tr.v[i]
    if (tr.v[i] > hi) hi = tr.v[i]
  }
  if (!(hi > lo)) return
  const pad = (hi - lo) * 0.1
  lo -= pad
  hi += pad
  g.strokeStyle = color
  g.lineWidth = 1.5
  g.beginPath()
  let prevT = -Infinity
  for (let i = 0; i < tr.t.length; i++) {
    const t = tr.t[i]
    if (t < from || t > until) continue
    const x = ((t - from) / (WINDOW_S * 1000)) * w
    let y = ((tr.v[i] - lo) / (hi - lo)) * h
    if (!invert) y = h - y
    // A real gap (a lost frame, not a late one) is left visible rather than bridged.
    if (t - prevT > 250) g.moveTo(x, y)
    else g.lineTo(x, y)
    prevT = t
  }
  g.stroke()
}

// ---------------------------------------------------------------- state

let me: Me | null = null
let live: EventSource | null = null
const tiles = new Map<string, Tile>()
let patients = new Map<string, Patient>()
let rafId = 0

interface Tile {
  root: HTMLElement
  ecg: Trace
  pleth: Trace
  ecgCanvas: HTMLCanvasElement
  plethCanvas: HTMLCanvasElement
  minLatency: number
  lastLocal: number
  last?: LiveFrameMsg
}

const fmt = (v: Vital | undefined, digits = 0): string => (v ? v.value.toFixed(digits) : '--')
const clock = (ms: number): string => new Date(ms).toLocaleTimeString()

function alarmsOf(f: LiveFrameMsg): string[] {
  const a = me!.alarms
  const out: string[] = []
  const spo2 = f.vitals.spo2
  const hr = f.vitals.hr ?? f.vitals.pr
  if (spo2 && spo2.value < a.spo2Low) out.push(`SpO2 LOW ${spo2.value.toFixed(0)}%`)
  if (hr && hr.value < a.hrLow) out.push(`HR LOW ${hr.value.toFixed(0)}`)
  if (hr && hr.value > a.hrHigh) out.push(`HR HIGH ${hr.value.toFixed(0)}`)
  return out
}

function makeTile(p: Patient): Tile {
  const root = el('div', { class: 'tile', 'data-patient': p.patientId },
    el('h3', {}, el('a', { href: `#/patient/${encodeURIComponent(p.patientId)}` }, p.name), el('span', { class: 'loc' }, p.location ?? ''), el('span', { class: 'conn offline' }, 'waiting')),
    el('canvas', { class: 'ecg' }),
    el('canvas', { class: 'pleth' }),
    el('div', { class: 'nums' },
      el('div', { class: 'num hr' }, el('small', {}, 'HR /min'), el('b', {}, '--'), el('small', { class: 'q' }, '')),
      el('div', { class: 'num pr' }, el('small', {}, 'PR /min'), el('b', {}, '--'), el('small', { class: 'q' }, '')),
      el('div', { class: 'num spo2' }, el('small', {}, 'SpO2 %'), el('b', {}, '--'), el('small', { class: 'q' }, '')),
      el('div', { class: 'num pvc' }, el('small', {}, 'PVC /min'), el('b', {}, '--'), el('small', { class: 'q' }, '')),
      el('span', { class: 'rhythm', hidden: '' }, ''),
      el('div', { class: 'flags' }, ''),
    ),
    el('div', { class: 'alarmtext' }, ''),
    el('div', { class: 'meta' }, ''),
  )
  return { root, ecg: new Trace(), pleth: new Trace(), ecgCanvas: $('canvas.ecg', root), plethCanvas: $('canvas.pleth', root), minLatency: Infinity, lastLocal: 0 }
}

function updateNumbers(tile: Tile, f: LiveFrameMsg): void {
  const set = (cls: string, v: Vital | undefined, digits: number, bad: boolean): void => {
    const n = $(`.num.${cls}`, tile.root)
    $('b', n).textContent = fmt(v, digits)
    $('.q', n).textContent = v ? `q ${v.quality}${v.source === 'gateway' ? ' · gw' : ''}` : ''
    n.classList.toggle('bad', bad)
  }
  const a = me!.alarms
  const hr = f.vitals.hr
  set('hr', hr, 0, !!hr && (hr.value < a.hrLow || hr.value > a.hrHigh))
  set('pr', f.vitals.pr, 0, false)
  set('spo2', f.vitals.spo2, 0, !!f.vitals.spo2 && f.vitals.spo2.value < a.spo2Low)
  // ECG findings: PVC/min with quality (and the seconds counted until a full minute); the rhythm only when one is called.
  const ecg = f.vitals.ecg
  const pvc = $('.num.pvc', tile.root)
  $('b', pvc).textContent = ecg ? String(ecg.pvcPerMin) : '--'
  $('.q', pvc).textContent = ecg ? `q ${ecg.quality}${ecg.windowS < 60 ? ` · ${ecg.windowS} s` : ''}` : ''
  const rhythm = $('.rhythm', tile.root)
  rhythm.textContent = ecg?.rhythm ?? ''
  rhythm.hidden = !ecg?.rhythm
  rhythm.classList.toggle('severe', ecg?.rhythm === 'VF' || ecg?.rhythm === 'VT' || ecg?.rhythm === 'ASYSTOLE')
  const flags: string[] = []
  if (f.flags & 1) flags.push('LEAD OFF')
  if (f.flags & 2) flags.push('FINGER OFF')
  if (f.flags & 4) flags.push('clock not synced')
  $('.flags', tile.root).textContent = flags.join(' · ')
  const alarms = alarmsOf(f)
  $('.alarmtext', tile.root).textContent = alarms.join(' · ')
  tile.root.classList.toggle('alarm', alarms.length > 0)
  const batt = f.batteryMv !== undefined ? `battery ${(f.batteryMv / 1000).toFixed(2)} V · ` : ''
  $('.meta', tile.root).textContent = `${batt}last frame ${clock(f.receivedMs)} · ${f.deviceId} #${f.seq}`
}

function onFrame(f: LiveFrameMsg): void {
  const tile = tiles.get(f.patientId)
  if (!tile) return
  const nowLocal = Date.now()
  let end = f.t0
  if (f.ecg && f.ecgHz) {
    tile.ecg.add(f.t0, f.ecgHz, f.ecg)
    end = Math.max(end, f.t0 + (f.ecg.length * 1000) / f.ecgHz)
  }
  if (f.ir && f.ppgHz) {
    tile.pleth.add(f.t0, f.ppgHz, f.ir)
    end = Math.max(end, f.t0 + (f.ir.length * 1000) / f.ppgHz)
  }
  tile.minLatency = Math.min(tile.minLatency, nowLocal - end)
  tile.lastLocal = nowLocal
  tile.last = f
  updateNumbers(tile, f)
}

function animate(): void {
  const nowLocal = Date.now()
  for (const tile of tiles.values()) {
    const conn = $('.conn', tile.root)
    const age = nowLocal - tile.lastLocal
    const state = tile.lastLocal === 0 ? 'offline' : age > STALE_MS * 3 ? 'offline' : age > STALE_MS ? 'stale' : 'live'
    conn.className = `conn ${state}`
    conn.textContent = tile.lastLocal === 0 ? 'waiting' : state === 'live' ? 'live' : `no data ${Math.round(age / 1000)} s`
    if (!Number.isFinite(tile.minLatency)) continue
    const until = nowLocal - tile.minLatency - PLAYOUT_DELAY_MS
    tile.ecg.trim(until - WINDOW_S * 1000 - 2000)
    tile.pleth.trim(until - WINDOW_S * 1000 - 2000)
    drawTrace(tile.ecgCanvas, tile.ecg, until, '#5fd67a', false)
    // MAX30102 counts fall as blood volume rises: show the pleth upright.
    drawTrace(tile.plethCanvas, tile.pleth, until, '#7fd3ff', true)
  }
  rafId = requestAnimationFrame(animate)
}

function openLive(onEnd: (patientId: string) => void, onSubscribed: (patientId: string) => void): void {
  live?.close()
  const es = new EventSource('/api/dash/live')
  live = es
  es.addEventListener('frame', (e) => onFrame(JSON.parse((e as MessageEvent).data) as LiveFrameMsg))
  es.addEventListener('end', (e) => onEnd((JSON.parse((e as MessageEvent).data) as { patientId: string }).patientId))
  es.addEventListener('subscribed', (e) => onSubscribed((JSON.parse((e as MessageEvent).data) as { patientId: string }).patientId))
}

function stopLive(): void {
  live?.close()
  live = null
  cancelAnimationFrame(rafId)
  tiles.clear()
}

// ---------------------------------------------------------------- views

async function loadPatients(): Promise<void> {
  patients = new Map((await api<Patient[]>('patients')).map((p) => [p.patientId, p]))
}

async function wardView(view: HTMLElement): Promise<void> {
  await loadPatients()
  const grid = el('div', { class: 'ward', id: 'ward' })
  const notice = el('p', { class: 'notice', id: 'ward-notice' })
  view.append(notice, grid)
  const add = (p: Patient): void => {
    if (tiles.has(p.patientId)) return
    const t = makeTile(p)
    tiles.set(p.patientId, t)
    grid.append(t.root)
  }
  for (const p of patients.values()) if (p.consented) add(p)
  if (tiles.size === 0) notice.textContent = 'No patient has granted you access.'
  openLive(
    (patientId) => {
      const t = tiles.get(patientId)
      t?.root.remove()
      tiles.delete(patientId)
      notice.textContent = `Access to ${patients.get(patientId)?.name ?? patientId} ended (consent revoked).`
    },
    async (patientId) => {
      if (!patients.has(patientId)) await loadPatients()
      const p = patients.get(patientId)
      if (p) add(p)
    },
  )
  rafId = requestAnimationFrame(animate)
}

function drawTrends(c: HTMLCanvasElement, tr: { hr: Pt[]; pr: Pt[]; spo2: Pt[] }, from: number, to: number): void {
  const w = (c.width = c.clientWidth || 800)
  const h = (c.height = c.clientHeight || 220)
  const g = c.getContext('2d')!
  g.clearRect(0, 0, w, h)
  const series: [Pt[], string, number, number][] = [[tr.hr, '#5fd67a', 30, 180], [tr.pr, '#c9a0ff', 30, 180], [tr.spo2, '#7fd3ff', 70, 100]]
  for (const [pts, color, lo, hi] of series) {
    g.strokeStyle = color
    g.beginPath()
    pts.forEach((p, i) => {
      const x = ((p.t - from) / (to - from)) * w
      const y = h - ((Math.min(hi, Math.max(lo, p.value)) - lo) / (hi - lo)) * h
      if (i === 0) g.moveTo(x, y)
      else g.lineTo(x, y)
    })
    g.stroke()
  }
  g.fillStyle = '#9aa7b4'
  g.fillText(`HR (green) / PR (violet): 30–180 /min · SpO2 (blue): 70–100 % · ${Math.round((to - from) / 60_000)} min to ${clock(to)}`, 6, 12)
}
interface Pt { t: number; value: number; quality: number }
interface FrameRow { leafHash: string; deviceId: string; seq: number; t0: number; state: 'sealed' | 'pending'; block?: number }

let producerKey: Uint8Array | null = null
const fromHex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16))

/** Fetches a frame's proof and checks it here, with the producer key pinned on first use. */
async function verifyInBrowser(leafHash: string): Promise<string> {
  if (!producerKey) {
    const { publicKey } = await api<{ publicKey: string }>('producer-key')
    // Trust on first use: a key that changes later (another gateway answering) is a failure, not a new anchor.
    const pinned = localStorage.getItem('mh-producer-key')
    if (pinned && pinned !== publicKey) throw new Error(`producer key changed from the pinned ${pinned.slice(0, 16)}… to ${publicKey.slice(0, 16)}…`)
    localStorage.setItem('mh-producer-key', publicKey)
    producerKey = fromHex(publicKey)
  }
  const bundle = await api<{ leaf: { hash: string } }>(`proof/${leafHash}`)
  if (bundle.leaf?.hash !== leafHash) throw new Error(`proof is for leaf ${String(bundle.leaf?.hash).slice(0, 16)}…, not ${leafHash.slice(0, 16)}…`)
  const r = checkProof(bundle, producerKey, { sha256: (d) => sha256(d), ed25519Verify: (pk, m, s) => ed25519.verify(s, m, pk) })
  if (!r.bytesChecked) throw new Error('the proof carries no frame bytes (pruned by retention)')
  return `verified: block ${r.height}, leaf ${r.leafIndex} of ${r.logSize}`
}

async function patientView(view: HTMLElement, patientId: string): Promise<void> {
  await loadPatients()
  const p = patients.get(patientId)
  const to = Date.now()
  const from = to - 3600_000
  const fhir = el('a', { href: `/api/dash/patients/${encodeURIComponent(patientId)}/fhir?from=${from}&to=${to}`, id: 'fhir' }, 'Export last hour as FHIR R4 Bundle')
  const canvas = el('canvas', { class: 'trend' })
  const table = el('table', { id: 'frames' }, el('tr', {}, el('th', {}, 'time'), el('th', {}, 'device'), el('th', {}, 'seq'), el('th', {}, 'state'), el('th', {}, 'leaf hash'), el('th', {}, '')))
  view.append(el('h2', {}, `${p?.name ?? patientId} `, el('span', { class: 'meta' }, p?.location ?? '')), fhir, canvas, el('h3', {}, 'Recent frames'), table)
  const [trends, frames] = await Promise.all([
    api<{ hr: Pt[]; pr: Pt[]; spo2: Pt[] }>(`patients/${encodeURIComponent(patientId)}/trends?from=${from}&to=${to}`),
    api<FrameRow[]>(`patients/${encodeURIComponent(patientId)}/frames?limit=30`),
  ])
  // Less than an hour of data: span what there is, so a fresh patient's trend is not a speck at the right edge.
  const first = Math.min(...[trends.hr, trends.pr, trends.spo2].filter((s) => s.length > 0).map((s) => s[0].t), to - 60_000)
  drawTrends(canvas, trends, Math.max(from, first), to)
  for (const f of frames) {
    const result = el('span', { class: 'result' })
    const btn = el('button', { type: 'button', class: 'verify' }, 'verify')
    btn.addEventListener('click', () => {
      result.className = 'result'
      result.textContent = 'checking…'
      verifyInBrowser(f.leafHash).then(
        (msg) => {
          result.className = 'result ok'
          result.textContent = msg
        },
        (err: Error) => {
          result.className = 'result fail'
          result.textContent = `failed: ${err.message}`
        },
      )
    })
    table.append(el('tr', {},
      el('td', {}, clock(f.t0)), el('td', { class: 'mono' }, f.deviceId), el('td', {}, String(f.seq)),
      el('td', {}, f.state === 'sealed' ? `signature checked · block ${f.block}` : 'signature checked · awaiting block'),
      el('td', { class: 'mono' }, f.leafHash.slice(0, 16) + '…'), el('td', {}, btn, ' ', result)))
  }
}

interface DeviceRow { deviceId: string; profile: string; patientId: string; status: string; lastSeenMs: number | null; online: boolean; acceptedFrames: number; rejected: Record<string, number> }

async function devicesView(view: HTMLElement): Promise<void> {
  const form = el('form', { class: 'inline', id: 'register' },
    el('select', { name: 'profile' }, el('option', { value: 'se' }, 'se (ATECC608)'), el('option', { value: 'bare' }, 'bare (HMAC)')),
    el('input', { name: 'patientId', placeholder: 'patient ID', required: '' }),
    el('input', { name: 'publicKey', placeholder: 'se: public key (130 hex)' }),
    el('input', { name: 'deviceId', placeholder: 'bare: device ID' }),
    el('input', { name: 'secret', placeholder: 'bare: secret (64 hex)' }),
    el('button', { type: 'submit' }, 'Register'),
  )
  const msg = el('p', { class: 'notice' })
  const table = el('table', { id: 'devices' })
  view.append(el('h2', {}, 'Devices'), form, msg, table)
  const render = async (): Promise<void> => {
    const rows = await api<DeviceRow[]>('devices')
    table.replaceChildren(el('tr', {}, ...['device', 'patient', 'profile', 'status', 'connection', 'last seen', 'accepted', 'rejected by reason', ''].map((h) => el('th', {}, h))))
    for (const d of rows) {
      const rej = Object.entries(d.rejected).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'
      const btn = el('button', { type: 'button' }, 'Revoke')
      btn.addEventListener('click', () => {
        api(`devices/${encodeURIComponent(d.deviceId)}/revoke`, { method: 'POST', body: {} }).then(render, (e: Error) => (msg.textContent = e.message))
      })
      table.append(el('tr', { 'data-device': d.deviceId },
        el('td', { class: 'mono' }, d.deviceId), el('td', {}, d.patientId), el('td', {}, d.profile), el('td', {}, d.status),
        el('td', {}, d.online ? 'connected' : 'offline'), el('td', {}, d.lastSeenMs ? clock(d.lastSeenMs) : 'never'),
        el('td', {}, String(d.acceptedFrames)), el('td', {}, rej), el('td', {}, d.status === 'active' ? btn : '')))
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const fd = new FormData(form)
    const body: Record<string, string> = {}
    for (const k of ['profile', 'patientId', 'publicKey', 'deviceId', 'secret']) {
      const v = fd.get(k)
      if (typeof v === 'string' && v !== '') body[k] = v
    }
    api('devices', { method: 'POST', body }).then(
      () => {
        msg.textContent = 'registered'
        form.reset()
        return render()
      },
      (err: Error) => (msg.textContent = err.message),
    )
  })
  await render()
}

interface ConsentStateMsg { patientId: string; grants: { clinicianId: string; scope: string; expiresMs: number | null; grantedMs: number }[] }

async function consentView(view: HTMLElement): Promise<void> {
  await loadPatients()
  const clinicians = await api<string[]>('clinicians')
  const msg = el('p', { class: 'notice' })
  view.append(el('h2', {}, 'Consent'), el('p', { class: 'meta' }, 'Each change is a record signed with the patient’s key (held by this demo on the patients’ behalf) and appended to the ledger.'), msg)
  for (const p of patients.values()) {
    const box = el('div', { class: 'consent', 'data-patient': p.patientId })
    view.append(box)
    const render = async (): Promise<void> => {
      const st = await api<ConsentStateMsg>(`patients/${encodeURIComponent(p.patientId)}/consent`)
      const sel = el('select', { name: 'clinicianId' }, ...clinicians.map((c) => el('option', { value: c }, c)))
      const grant = el('button', { type: 'button', class: 'grant' }, 'Grant live access')
      grant.addEventListener('click', () => change('grant', sel.value))
      const rows = st.grants.map((g) => {
        const b = el('button', { type: 'button', class: 'revoke', 'data-clinician': g.clinicianId }, 'Revoke')
        b.addEventListener('click', () => change('revoke', g.clinicianId, g.scope))
        return el('tr', {}, el('td', {}, g.clinicianId), el('td', {}, g.scope), el('td', {}, clock(g.grantedMs)), el('td', {}, g.expiresMs ? clock(g.expiresMs) : 'no expiry'), el('td', {}, b))
      })
      box.replaceChildren(el('h3', {}, `${p.name} `, el('span', { class: 'meta' }, p.patientId)), el('table', {}, ...rows), el('div', { class: 'inline' }, sel, grant))
    }
    const change = (action: 'grant' | 'revoke', clinicianId: string, scope = 'live'): void => {
      api(`patients/${encodeURIComponent(p.patientId)}/consent`, { method: 'POST', body: { action, clinicianId, scope } }).then(
        () => {
          msg.textContent = `${action} recorded for ${clinicianId} on ${p.name}`
          return render()
        },
        (err: Error) => (msg.textContent = err.message),
      )
    }
    await render()
  }
}

// ---------------------------------------------------------------- shell

function showLogin(): void {
  stopLive()
  me = null
  $('#nav').hidden = true
  $('#view').replaceChildren()
  $('#login').hidden = false
}

async function route(): Promise<void> {
  if (!me) return
  stopLive()
  const view = $('#view')
  view.replaceChildren()
  const [, page, arg] = location.hash.split('/')
  try {
    if (page === 'patient' && arg) await patientView(view, decodeURIComponent(arg))
    else if (page === 'devices') await devicesView(view)
    else if (page === 'consent') await consentView(view)
    else await wardView(view)
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) view.append(el('p', { class: 'error' }, (err as Error).message))
  }
}

async function start(): Promise<void> {
  try {
    me = await api<Me>('me')
  } catch {
    return showLogin()
  }
  $('#login').hidden = true
  $('#nav').hidden = false
  $('#who').textContent = `${me.userId} (${me.role})`
  const role = me.role
  document.querySelectorAll<HTMLElement>('nav .admin').forEach((a) => (a.hidden = role !== 'admin'))
  await route()
}

document.addEventListener('DOMContentLoaded', () => {
  const form = $<HTMLFormElement>('#login')
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const fd = new FormData(form)
    api('login', { method: 'POST', body: { username: fd.get('username'), password: fd.get('password') } }).then(
      () => {
        $('#login-error').textContent = ''
        form.reset()
        return start()
      },
      (err: Error) => ($('#login-error').textContent = err.message),
    )
  })
  $('#logout').addEventListener('click', () => {
    api('logout', { method: 'POST', body: {} }).finally(showLogin)
  })
  window.addEventListener('hashchange', () => void route())
  void start()
})
