/**
 * The live page's client (served as /app.js; bundled by scripts/build.cjs for the browser, es2019): plain
 * DOM and two canvas charts, no framework. Polls /api/summary every second into a ring of the last five
 * minutes (occupancy %, drops/s from the difference of the drop total), and the flows, vifs and dropstats
 * every two seconds. Rows carry stable attributes for tests: `data-flow-index`, `data-vif`, `data-drop`;
 * the flow table says which filter and page its rows answer (`data-filter`, `data-page`), the charts how
 * many points they drew (`data-points`).
 * Type-checked by src/introspect/web/tsconfig.json (DOM library), not by the Node tsconfig.
 */

interface Summary {
  time: number;
  node: { host: string; networks: string[]; vifs: number; aging: boolean };
  table: { entries: number; oentries: number; total: number };
  active: number;
  overflowUsed: number;
  occupancyPct: number;
  created: number;
  added: number;
  processed: number;
  dropsTotal: number;
}
interface Flow {
  index: number; rindex: number; sip: string; sport: number; dip: string; dport: number; proto: number; protoName: string;
  vrf: number; action: string; tcp: string; packets: number; bytes: number; srcVn: string; dstVn: string;
}
interface FlowPage { filter: string; page: number; pageSize: number; matched: number; active: number; flows: Flow[]; partial: boolean; scanned: number; total: number }
interface Vif {
  idx: number; name: string; os: string; type: string; vrf: number; flags: string; vm: string;
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; rxErrors: number; txErrors: number;
}
interface Drop { label: string; code: number; value: number }

const WINDOW_S = 300;
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

/** A fixed ring of [time ms, value] points. */
class Ring {
  private readonly t = new Float64Array(WINDOW_S + 1);
  private readonly v = new Float64Array(WINDOW_S + 1);
  private head = 0;
  n = 0;
  push(t: number, v: number): void {
    this.t[this.head] = t;
    this.v[this.head] = v;
    this.head = (this.head + 1) % this.t.length;
    if (this.n < this.t.length) this.n++;
  }
  /** The k-th oldest point. */
  at(k: number): [number, number] {
    const i = (this.head - this.n + k + this.t.length) % this.t.length;
    return [this.t[i], this.v[i]];
  }
}

const occ = new Ring();
const dps = new Ring();
let lastDrops: { t: number; total: number } | undefined;

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart(canvas: HTMLCanvasElement, ring: Ring, color: string, fixedMax?: number, unit = ''): void {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const g = canvas.getContext('2d');
  if (!g) return;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 48, R = 8, T = 8, B = 20;
  const now = ring.n > 0 ? ring.at(ring.n - 1)[0] : Date.now();
  let max = 0;
  for (let k = 0; k < ring.n; k++) max = Math.max(max, ring.at(k)[1]);
  const top = fixedMax ?? niceMax(max * 1.1);
  const x = (t: number): number => L + ((w - L - R) * (t - (now - WINDOW_S * 1000))) / (WINDOW_S * 1000);
  const y = (v: number): number => T + (h - T - B) * (1 - Math.min(v, top) / top);
  g.font = '11px system-ui, sans-serif';
  g.strokeStyle = '#e3e6ea';
  g.fillStyle = '#666';
  g.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath();
    g.moveTo(L, yy);
    g.lineTo(w - R, yy);
    g.stroke();
    g.fillText(`${+v.toPrecision(3)}${unit}`, 2, yy + 4);
  }
  for (let m = 0; m <= 5; m++) g.fillText(m === 5 ? 'now' : `-${5 - m}m`, x(now - (5 - m) * 60_000) - (m === 5 ? 20 : 8), h - 4);
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  for (let k = 0; k < ring.n; k++) {
    const [t, v] = ring.at(k);
    if (k === 0) g.moveTo(x(t), y(v));
    else g.lineTo(x(t), y(v));
  }
  g.stroke();
  canvas.setAttribute('data-points', String(ring.n));
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error((body && body.error) || `${url}: HTTP ${r.status}`);
  return body as T;
}

function cell(tr: HTMLTableRowElement, text: string | number, num = false): void {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (num) td.className = 'n';
  tr.appendChild(td);
}

let summaryBusy = false;
async function pollSummary(): Promise<void> {
  if (summaryBusy) return;
  summaryBusy = true;
  try {
    const s = await getJson<Summary>('api/summary');
    occ.push(s.time, s.occupancyPct);
    if (lastDrops && s.time > lastDrops.t) dps.push(s.time, Math.max(0, (s.dropsTotal - lastDrops.total) * 1000 / (s.time - lastDrops.t)));
    else dps.push(s.time, 0);
    lastDrops = { t: s.time, total: s.dropsTotal };
    $('node-info').textContent = `${s.node.host} · ${s.node.networks.length} VN · ${s.node.vifs} vifs · aging ${s.node.aging ? 'on' : 'off'}`;
    $('table-info').textContent = `table ${s.table.entries}+${s.table.oentries} · active ${s.active} (${s.occupancyPct.toFixed(2)} %) · overflow in use ${s.overflowUsed} · Created ${s.created} Added ${s.added} Processed ${s.processed} · drops ${s.dropsTotal}`;
    $('updated').textContent = new Date(s.time).toLocaleTimeString();
    $('updated').className = '';
  } catch (e) {
    $('updated').textContent = `no answer: ${(e as Error).message}`;
    $('updated').className = 'err';
  } finally {
    summaryBusy = false;
  }
  drawChart($<HTMLCanvasElement>('chart-occupancy'), occ, '#1f77b4', undefined, ' %');
  drawChart($<HTMLCanvasElement>('chart-drops'), dps, '#d62728');
}

let flowFilter = '';
let flowPageNo = 0;
let flowSeq = 0;
let flowMatched = 0;
async function loadFlows(): Promise<void> {
  const seq = ++flowSeq;
  const filter = flowFilter;
  const pg = flowPageNo;
  const status = $('flow-status');
  try {
    const p = await getJson<FlowPage>(`api/flows?filter=${encodeURIComponent(filter)}&page=${pg}`);
    if (seq !== flowSeq) return; // a newer request is on its way
    const tbody = ($('flows') as HTMLTableElement).tBodies[0];
    const rows = document.createDocumentFragment();
    for (const f of p.flows) {
      const tr = document.createElement('tr');
      tr.setAttribute('data-flow-index', String(f.index));
      tr.setAttribute('data-proto', String(f.proto));
      tr.setAttribute('data-sport', String(f.sport));
      tr.setAttribute('data-dport', String(f.dport));
      cell(tr, f.index, true);
      cell(tr, f.rindex >= 0 ? f.rindex : '', true);
      cell(tr, `${f.sip}:${f.sport}`);
      cell(tr, `${f.dip}:${f.dport}`);
      cell(tr, f.protoName);
      cell(tr, f.vrf, true);
      cell(tr, f.action);
      cell(tr, f.tcp);
      cell(tr, f.packets, true);
      cell(tr, f.bytes, true);
      cell(tr, f.srcVn);
      cell(tr, f.dstVn);
      rows.appendChild(tr);
    }
    tbody.replaceChildren(rows);
    flowMatched = p.matched;
    const from = p.matched === 0 ? 0 : p.page * p.pageSize + 1;
    const to = p.page * p.pageSize + p.flows.length;
    const pages = Math.max(1, Math.ceil(p.matched / p.pageSize));
    status.textContent = `${from}–${to} of ${p.matched} matching (${p.active} active; page ${p.page + 1}/${pages})${p.partial ? ` — scan stopped at ${p.scanned} of ${p.total}` : ''}`;
    status.className = '';
    const table = $('flows');
    table.setAttribute('data-filter', filter);
    table.setAttribute('data-page', String(pg));
    table.setAttribute('data-matched', String(p.matched));
  } catch (e) {
    if (seq !== flowSeq) return;
    status.textContent = (e as Error).message;
    status.className = 'err';
    $('flows').setAttribute('data-error', (e as Error).message);
  }
}

async function loadVifs(): Promise<void> {
  try {
    const vs = await getJson<Vif[]>('api/vifs');
    const frag = document.createDocumentFragment();
    for (const v of vs) {
      const tr = document.createElement('tr');
      tr.setAttribute('data-vif', String(v.idx));
      cell(tr, v.name);
      cell(tr, v.os);
      cell(tr, v.type);
      cell(tr, v.vrf, true);
      cell(tr, v.flags);
      cell(tr, v.vm);
      cell(tr, v.rxPackets, true);
      cell(tr, v.rxBytes, true);
      cell(tr, v.txPackets, true);
      cell(tr, v.txBytes, true);
      cell(tr, v.rxErrors + v.txErrors, true);
      frag.appendChild(tr);
    }
    ($('vifs') as HTMLTableElement).tBodies[0].replaceChildren(frag);
  } catch {
    // the header says the node does not answer
  }
}

async function loadDrops(): Promise<void> {
  try {
    const ds = await getJson<Drop[]>('api/dropstats');
    // Non-zero first (largest first), then the rest in the tool's order.
    const order = ds.map((d, k) => ({ d, k })).sort((a, b) => (b.d.value > 0 ? 1 : 0) - (a.d.value > 0 ? 1 : 0) || (a.d.value > 0 ? b.d.value - a.d.value : 0) || a.k - b.k);
    const frag = document.createDocumentFragment();
    for (const { d } of order) {
      const li = document.createElement('li');
      li.setAttribute('data-drop', d.label);
      li.setAttribute('data-value', String(d.value));
      if (d.value === 0) li.className = 'z';
      const b = document.createElement('b');
      b.textContent = String(d.value);
      li.append(`${d.label} `, b);
      frag.appendChild(li);
    }
    $('drops').replaceChildren(frag);
  } catch {
    // as above
  }
}

function start(): void {
  const input = $<HTMLInputElement>('flow-filter');
  let timer: number | undefined;
  input.addEventListener('input', () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = window.setTimeout(() => {
      flowFilter = input.value.trim();
      flowPageNo = 0;
      void loadFlows();
    }, 200);
  });
  $('flow-prev').addEventListener('click', () => {
    if (flowPageNo > 0) {
      flowPageNo--;
      void loadFlows();
    }
  });
  $('flow-next').addEventListener('click', () => {
    if ((flowPageNo + 1) * 100 < flowMatched) {
      flowPageNo++;
      void loadFlows();
    }
  });
  void pollSummary();
  void loadFlows();
  void loadVifs();
  void loadDrops();
  window.setInterval(() => void pollSummary(), 1000);
  window.setInterval(() => {
    void loadFlows();
    void loadVifs();
    void loadDrops();
  }, 2000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
