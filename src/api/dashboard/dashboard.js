// tsvsd dashboard: polls the admin API every second and keeps the page's tables, sparklines and health events current.
'use strict';

const POLL_MS = 1000;
const HISTORY = 60;
const SVG_NS = 'http://www.w3.org/2000/svg';

let token = sessionStorage.getItem('tsvs-token') || '';
/** key -> { last: {t, conns, inpkts, outpkts}, cps: number[], pps: number[] } */
const history = new Map();
/** key -> { card | row, cells } so polling updates in place and buttons survive. */
const serviceViews = new Map();
/** Health events seen this session, keyed so each transition appears once. */
const events = new Map();
let healthEnabled = false;
let lastHealth = null;

function $(id) {
  return document.getElementById(id);
}

/**
 * The page's one way to build elements. Everything the API returns (service and server addresses,
 * health messages that quote a check's output, error texts) is untrusted: children are appended as
 * text nodes and attributes set as properties, never parsed as HTML. No innerHTML anywhere.
 */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (/html/i.test(k)) throw new Error('el(): ' + k + ' would parse markup');
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  // The API refuses any state change that is not JSON (what a forged form post would be).
  if (method !== 'GET') headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    $('login').hidden = false;
    throw new Error('the API needs a token');
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.error && data.error.message) || res.statusText);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US');
}

function fmtRate(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  if (n >= 100) return Math.round(n).toString();
  return n.toFixed(n >= 10 ? 0 : 1);
}

function fmtBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i] + '/s';
}

function serviceText(k) {
  if (k.type === 'fwmark') return 'FWM ' + k.fwmark;
  const a = k.addr.includes(':') ? '[' + k.addr + ']' : k.addr;
  return k.type.toUpperCase() + ' ' + a + ':' + k.port;
}

function keyText(k) {
  return k.type === 'fwmark' ? 'fwmark ' + k.fwmark : k.type + ' ' + k.addr + ':' + k.port;
}

const FWD = { masq: 'Masq', route: 'Route', tunnel: 'Tunnel', local: 'Local' };

// ---------------------------------------------------------------------------------------------
// Rates from counter deltas (one sample per poll) for the sparklines

function track(key, stats, now) {
  let h = history.get(key);
  if (!h) {
    h = { last: null, cps: [], pps: [] };
    history.set(key, h);
  }
  if (h.last && now > h.last.t) {
    const dt = (now - h.last.t) / 1000;
    // A zeroed counter (tsvsadm -Z) would read as a negative rate.
    h.cps.push(Math.max(0, (stats.conns - h.last.conns) / dt));
    h.pps.push(Math.max(0, (stats.inpkts + stats.outpkts - h.last.inpkts - h.last.outpkts) / dt));
    if (h.cps.length > HISTORY) h.cps.shift();
    if (h.pps.length > HISTORY) h.pps.shift();
  }
  h.last = { t: now, conns: stats.conns, inpkts: stats.inpkts, outpkts: stats.outpkts };
  return h;
}

function sparkline(svg, values, width, height) {
  while (svg.firstChild) svg.firstChild.remove();
  const max = Math.max(1, ...values);
  const n = HISTORY;
  const x = (i) => (width * (i + n - values.length)) / (n - 1);
  const y = (v) => height - 1 - ((height - 2) * v) / max;
  const pts = values.map((v, i) => x(i).toFixed(1) + ',' + y(v).toFixed(1));
  if (pts.length < 2) return;
  const area = document.createElementNS(SVG_NS, 'polygon');
  area.setAttribute('points', pts.join(' ') + ' ' + x(values.length - 1).toFixed(1) + ',' + height + ' ' + x(0).toFixed(1) + ',' + height);
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(area, line);
  svg.setAttribute('data-last', String(Math.round(values[values.length - 1])));
}

function newSpark(width, height, label) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Health

function healthIndex(snapshot) {
  const idx = new Map();
  if (!snapshot || !snapshot.pools) return idx;
  for (const p of snapshot.pools) for (const s of p.servers) idx.set(p.service + ' ' + s.addr + ':' + s.port, s);
  return idx;
}

function collectEvents(snapshot) {
  if (!snapshot || !snapshot.pools) return;
  for (const p of snapshot.pools) {
    for (const s of p.servers) {
      if (s.lastChange === null) continue;
      const id = p.service + '|' + s.addr + ':' + s.port + '|' + s.lastChange;
      if (!events.has(id)) events.set(id, { t: s.lastChange, service: p.service, server: s.addr + ':' + s.port, state: s.state, detail: s.lastDetail });
    }
  }
  const list = $('events');
  const sorted = [...events.values()].sort((a, b) => b.t - a.t).slice(0, 30);
  list.replaceChildren(
    ...sorted.map((e) =>
      el(
        'li',
        { 'data-state': e.state },
        el('time', {}, new Date(e.t).toLocaleTimeString()),
        el('span', { class: 'badge ' + e.state }, e.state),
        ' ',
        el('span', { class: 'what' }, e.service + ' → ' + e.server),
        el('span', { class: 'detail' }, e.detail || ''),
      ),
    ),
  );
  if (!sorted.length) list.replaceChildren(el('li', { class: 'muted' }, 'no state changes yet'));
}

// ---------------------------------------------------------------------------------------------
// Services

function serviceCard(svc) {
  const key = keyText(svc.key);
  let v = serviceViews.get(key);
  if (v) return v;
  const cpsSpark = newSpark(120, 26, 'connections per second');
  const ppsSpark = newSpark(120, 26, 'packets per second');
  const tbody = el('tbody');
  const card = el(
    'article',
    { class: 'card', 'data-service': key },
    el(
      'div',
      { class: 'svc-head' },
      el('span', { class: 'svc-name' }, serviceText(svc.key)),
      el('span', { class: 'svc-meta' }),
      el(
        'span',
        { class: 'svc-rates' },
        el('span', { class: 'cps' }),
        cpsSpark,
        el('span', { class: 'pps' }),
        ppsSpark,
      ),
    ),
    el(
      'table',
      {},
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...['real server', 'forward', 'weight', 'health', 'active', 'inactive', 'conns', 'conn/s', 'pkt/s', 'in', 'out', 'last 60 s', ''].map((h, i) =>
            el('th', i === 0 || i === 1 ? { class: 'l' } : {}, h),
          ),
        ),
      ),
      tbody,
    ),
  );
  v = { card, tbody, cpsSpark, ppsSpark, rows: new Map(), seen: true };
  serviceViews.set(key, v);
  $('services').append(card);
  return v;
}

function destRow(view, svc, d) {
  const id = d.addr + ':' + d.port;
  let r = view.rows.get(id);
  if (r) return r;
  const cells = {};
  const td = (name, cls) => (cells[name] = el('td', cls ? { class: cls } : {}));
  const button = el('button', { type: 'button', 'data-action': 'drain' }, 'Drain');
  const spark = newSpark(90, 20, 'packets per second');
  const tr = el(
    'tr',
    { 'data-dest': id },
    td('addr', 'addr l'),
    td('fwd', 'l'),
    td('weight', 'weight'),
    td('health'),
    td('active'),
    td('inactive'),
    td('conns'),
    td('cps'),
    td('pps'),
    td('inbps'),
    td('outbps'),
    el('td', {}, spark),
    el('td', {}, button),
  );
  cells.addr.textContent = d.addr.includes(':') ? '[' + d.addr + ']:' + d.port : id;
  button.addEventListener('click', () => toggleDrain(svc.key, d, button));
  r = { tr, cells, button, spark, seen: true };
  view.rows.set(id, r);
  view.tbody.append(r.tr);
  return r;
}

async function toggleDrain(serviceKey, d, button) {
  const action = button.getAttribute('data-action');
  button.disabled = true;
  try {
    await api('POST', '/api/v1/servers/' + action, { service: serviceKey, dest: { addr: d.addr, port: d.port } });
    await poll();
  } catch (e) {
    setStatus(action + ' failed: ' + e.message, true);
  } finally {
    button.disabled = false;
  }
}

function render(list, health, now) {
  const hidx = healthIndex(health);
  let dests = 0;
  let active = 0;
  let inactive = 0;
  // Header rates are per-second counter deltas like the rows', not the 2-second estimator.
  const rates = { cps: 0, pps: 0 };
  for (const v of serviceViews.values()) v.seen = false;
  for (const svc of list.services) {
    const v = serviceCard(svc);
    v.seen = true;
    const key = keyText(svc.key);
    const meta = [svc.scheduler, svc.persistent ? 'persistent ' + svc.timeout + 's' : null].filter(Boolean).join(' · ');
    v.card.querySelector('.svc-meta').textContent = meta;
    const h = track(key, svc.stats, now);
    v.card.querySelector('.cps').textContent = fmtRate(h.cps.at(-1) || 0) + ' conn/s';
    v.card.querySelector('.pps').textContent = fmtRate(h.pps.at(-1) || 0) + ' pkt/s';
    sparkline(v.cpsSpark, h.cps, 120, 26);
    sparkline(v.ppsSpark, h.pps, 120, 26);
    rates.cps += h.cps.at(-1) || 0;
    rates.pps += h.pps.at(-1) || 0;
    for (const r of v.rows.values()) r.seen = false;
    // Stable order: by address then port, whatever order the director lists them in.
    const sorted = [...svc.dests].sort((a, b) => (a.addr === b.addr ? a.port - b.port : a.addr < b.addr ? -1 : 1));
    for (const d of sorted) {
      dests++;
      active += d.activeConns;
      inactive += d.inactConns;
      const r = destRow(v, svc, d);
      r.seen = true;
      v.tbody.append(r.tr);
      const c = r.cells;
      c.fwd.textContent = FWD[d.fwd] || d.fwd;
      c.weight.textContent = String(d.weight);
      c.weight.className = 'weight' + (d.weight === 0 ? ' zero' : '');
      const hs = hidx.get(serviceText(svc.key) + ' ' + d.addr + ':' + d.port);
      c.health.replaceChildren(
        hs ? el('span', { class: 'badge ' + hs.state, title: hs.lastDetail || '' }, hs.state) : el('span', { class: 'badge none' }, '—'),
      );
      c.active.textContent = fmtInt(d.activeConns);
      c.inactive.textContent = fmtInt(d.inactConns);
      c.conns.textContent = fmtInt(d.stats.conns);
      const dh = track(key + ' ' + d.addr + ':' + d.port, d.stats, now);
      c.cps.textContent = fmtRate(dh.cps.at(-1) || 0);
      c.pps.textContent = fmtRate(dh.pps.at(-1) || 0);
      c.inbps.textContent = fmtBytes(d.rates.inbps);
      c.outbps.textContent = fmtBytes(d.rates.outbps);
      sparkline(r.spark, dh.pps, 90, 20);
      const drained = d.weight === 0;
      r.button.setAttribute('data-action', drained ? 'undrain' : 'drain');
      r.button.textContent = drained ? 'Undrain' : 'Drain';
      r.button.className = drained ? 'undrain' : '';
    }
    for (const [id, r] of v.rows) {
      if (!r.seen) {
        r.tr.remove();
        v.rows.delete(id);
      }
    }
    if (!svc.dests.length && !v.tbody.querySelector('.empty-row')) {
      v.tbody.append(el('tr', { class: 'empty-row' }, el('td', { colSpan: 13, class: 'l muted' }, 'no real servers')));
    } else if (svc.dests.length) v.tbody.querySelector('.empty-row')?.remove();
  }
  for (const [key, v] of serviceViews) {
    if (!v.seen) {
      v.card.remove();
      serviceViews.delete(key);
    }
  }
  const none = $('services').querySelector('.empty');
  if (!list.services.length && !none) $('services').append(el('p', { class: 'empty' }, 'No virtual services. Add one with tsvsadm -A or POST /api/v1/services.'));
  if (list.services.length && none) none.remove();
  $('t-services').textContent = String(list.services.length);
  $('t-dests').textContent = String(dests);
  $('t-active').textContent = fmtInt(active);
  $('t-inactive').textContent = fmtInt(inactive);
  $('t-cps').textContent = fmtRate(rates.cps);
  $('t-pps').textContent = fmtRate(rates.pps);
}

// VRRP instances: state badge, priority, the master heard, advert counters (GET /api/v1/vrrp).
function renderVrrp(v) {
  const rows = v.instances.map((i) =>
    el(
      'tr',
      { title: (i.faults.length ? 'fault: ' + i.faults.join('; ') + '\n' : '') + i.addresses.join(', ') },
      el('td', { class: 'l addr' }, i.name),
      el('td', { class: 'l' }, el('span', { class: 'badge vrrp-' + i.state.toLowerCase() }, i.state)),
      el('td', {}, String(i.priority)),
      el('td', { class: 'l addr' }, i.master || '–'),
      el('td', {}, fmtInt(i.stats.advertsReceived) + ' / ' + fmtInt(i.stats.advertsSent) + ' / ' + fmtInt(i.stats.advertsBad)),
    ),
  );
  $('vrrp-rows').replaceChildren(...rows);
  $('vrrp').hidden = rows.length === 0;
}

function setStatus(text, error) {
  const s = $('status');
  s.textContent = text;
  s.className = 'status' + (error ? ' error' : '');
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [list, health, vrrp] = await Promise.all([api('GET', '/api/v1/services'), api('GET', '/api/v1/health'), api('GET', '/api/v1/vrrp')]);
    renderVrrp(vrrp);
    healthEnabled = !!health.enabled;
    lastHealth = healthEnabled ? health : null;
    render(list, lastHealth, Date.now());
    $('health-state').textContent = healthEnabled
      ? 'health checking: ' + health.pools.length + ' pool(s), ' + health.counters.checks + ' checks, ' + health.counters.failures + ' failures'
      : 'health checking: off';
    collectEvents(lastHealth);
    setStatus('updated ' + new Date().toLocaleTimeString(), false);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    polling = false;
  }
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('tsvs-token', token);
  $('login').hidden = true;
  poll();
});

poll();
setInterval(poll, POLL_MS);
