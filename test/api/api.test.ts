// Admin HTTP API against a real Dataplane over memory ports: routing, zod errors, errno → status, drain, tokens, listeners.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import type { RequestHandler } from '../../src/ctl/server.ts';
import type { ListResult } from '../../src/ctl/protocol.ts';
import type { HealthSnapshot } from '../../src/health/index.ts';
import { createAdminApp, httpStatusFor, newAdminRefusals, ADMIN_MAX_BODY } from '../../src/api/app.ts';
import { startAdmin, parseAdminListen, isLoopback, AdminConfigError } from '../../src/api/server.ts';
import { connect as netConnect } from 'node:net';
import { parseExposition } from './exposition.ts';

const VIP = '198.18.1.100';
const SVC = { type: 'tcp', addr: VIP, port: 80 } as const;

function director() {
  const lan = new MemoryPort('lan0', { mac: new Uint8Array([2, 0, 0, 0, 1, 1]) });
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: [`${VIP}/32@lan0`, '198.18.1.2/24@lan0'],
    services: [{ protocol: 'tcp', address: VIP, port: 80, scheduler: 'rr', realservers: [{ address: '198.18.1.11', port: 80, method: 'dr', weight: 3 }] }],
  });
  const dp = new Dataplane([lan], config, () => {});
  const handler: RequestHandler = async (req) => dp.handle(req);
  return { dp, handler };
}

function app(extra: Partial<Parameters<typeof createAdminApp>[0]> = {}) {
  const { dp, handler } = director();
  const logs: string[] = [];
  const a = createAdminApp({ handler, dashboard: false, log: (_l, m, f) => logs.push(`${m} ${JSON.stringify(f)}`), ...extra });
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    // As a script would: JSON on every state-changing request, with or without a body.
    const init: RequestInit = { method, headers: { ...(body !== undefined || method !== 'GET' ? { 'content-type': 'application/json' } : {}), ...headers } };
    if (body instanceof ReadableStream) Object.assign(init, { body, duplex: 'half' });
    else if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await a.request(path, init);
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      // metrics and pages are not JSON
    }
    return { status: res.status, json, text, res };
  };
  return { a, dp, call, logs };
}

const weightOf = (list: ListResult, addr: string) => list.services.find((s) => s.key.type === 'tcp' && s.key.port === 80)!.dests.find((d) => d.addr === addr)!.weight;

test('GET /api/v1/services lists the director table', async () => {
  const { call } = app();
  const r = await call('GET', '/api/v1/services');
  assert.equal(r.status, 200);
  assert.equal(r.json.services.length, 1);
  assert.deepEqual(r.json.services[0].key, SVC);
  assert.equal(r.json.services[0].dests[0].addr, '198.18.1.11');
  assert.equal(r.json.services[0].dests[0].weight, 3);
});

test('services: add 201, duplicate 409 with ipvsadm text, edit, delete, then 404', async () => {
  const { call, logs } = app();
  const key = { type: 'udp', addr: VIP, port: 53 };
  let r = await call('POST', '/api/v1/services', { service: key, config: { scheduler: 'wrr' } });
  assert.equal(r.status, 201, r.text);
  r = await call('POST', '/api/v1/services', { service: key });
  assert.equal(r.status, 409);
  assert.deepEqual(r.json.error, { code: 'EEXIST', op: 'add-service', message: 'Service already exists' });
  r = await call('PUT', '/api/v1/services', { service: key, config: { scheduler: 'sh', persistent: true } });
  assert.equal(r.status, 200, r.text);
  const list = (await call('GET', '/api/v1/services')).json as ListResult;
  const s = list.services.find((x) => x.key.type === 'udp')!;
  assert.equal(s.scheduler, 'sh');
  assert.equal(s.persistent, true);
  assert.equal(s.timeout, 300, 'a persistent service without a timeout gets ipvsadm -p’s 300 s');
  r = await call('DELETE', '/api/v1/services', { service: key });
  assert.equal(r.status, 200);
  r = await call('DELETE', '/api/v1/services', { service: key });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.message, 'No such service');
  assert.ok(logs.some((l) => l.includes('"method":"POST"') && l.includes('"status":201')), 'changes are logged');
});

test('servers: errno → HTTP status with ipvsadm messages', async () => {
  const { call } = app();
  const missing = { type: 'tcp', addr: VIP, port: 81 };
  let r = await call('POST', '/api/v1/servers', { service: missing, dest: { addr: '198.18.1.12', port: 81 } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.message, 'Service not defined');
  r = await call('POST', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.12', port: 80, weight: 2 } });
  assert.equal(r.status, 201, r.text);
  r = await call('POST', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.12', port: 80 } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.message, 'Destination already exists');
  r = await call('PUT', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.13', port: 80 } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.message, 'No such destination');
  r = await call('DELETE', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.12', port: 80 } });
  assert.equal(r.status, 200);
  r = await call('POST', '/api/v1/services', { service: { type: 'tcp', addr: VIP, port: 443 }, config: { scheduler: 'no-such' } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'ENOENT');
  assert.equal(r.json.error.message, 'Scheduler or persistence engine not found');
});

test('bodies are zod-validated: 400 with the path, 415 without JSON, nothing changes', async () => {
  const { call } = app();
  let r = await call('POST', '/api/v1/services', { service: { type: 'tcp', addr: VIP, port: 70000 } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'EINVAL');
  assert.match(r.json.error.message, /service\.port/);
  assert.ok(Array.isArray(r.json.error.issues));
  r = await call('POST', '/api/v1/servers', { service: SVC, dest: { addr: 'not-an-ip', port: 80 } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /dest\.addr/);
  r = await call('POST', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.12', port: 80, bogus: 1 } });
  assert.equal(r.status, 400, 'unknown fields are refused');
  r = await call('POST', '/api/v1/services', '{"service":', { 'content-type': 'application/json' });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /not valid JSON/);
  r = await call('POST', '/api/v1/services', JSON.stringify({ service: SVC }), { 'content-type': 'text/plain' });
  assert.equal(r.status, 415);
  r = await call('PUT', '/api/v1/timeouts', { tcp: -1 });
  assert.equal(r.status, 400);
  r = await call('GET', '/api/v1/nothing');
  assert.equal(r.status, 404);
  const list = (await call('GET', '/api/v1/services')).json as ListResult;
  assert.equal(list.services.length, 1);
  assert.equal(list.services[0]!.dests.length, 1);
});

test('httpStatusFor maps every errno', () => {
  assert.equal(httpStatusFor('EEXIST'), 409);
  assert.equal(httpStatusFor('ESRCH'), 404);
  assert.equal(httpStatusFor('ENOENT'), 404);
  assert.equal(httpStatusFor('EINVAL'), 400);
  assert.equal(httpStatusFor('ERANGE'), 400);
  assert.equal(httpStatusFor('EPERM'), 403);
  assert.equal(httpStatusFor('ENOMEM'), 500);
  assert.equal(httpStatusFor('EOPNOTSUPP'), 500);
  assert.equal(httpStatusFor('EBUSY'), 503);
  assert.equal(httpStatusFor('ETIMEDOUT'), 408);
});

test('drain sets weight 0 and undrain restores the last non-zero weight, even after a double drain', async () => {
  const { call } = app();
  const target = { service: SVC, dest: { addr: '198.18.1.11', port: 80 } };
  let r = await call('POST', '/api/v1/servers/drain', target);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { weight: 0, previous: 3, restoreTo: 3 });
  assert.equal(weightOf((await call('GET', '/api/v1/services')).json, '198.18.1.11'), 0);
  r = await call('POST', '/api/v1/servers/drain', target);
  assert.equal(r.json.restoreTo, 3);
  r = await call('POST', '/api/v1/servers/undrain', target);
  assert.deepEqual(r.json, { weight: 3, previous: 0, remembered: true });
  assert.equal(weightOf((await call('GET', '/api/v1/services')).json, '198.18.1.11'), 3);
  // Nothing remembered (drained elsewhere, e.g. tsvsadm -e -w 0): weight 1, or what the caller asks.
  await call('PUT', '/api/v1/servers', { service: SVC, dest: { addr: '198.18.1.11', port: 80, fwd: 'route', weight: 0 } });
  r = await call('POST', '/api/v1/servers/undrain', target);
  assert.deepEqual(r.json, { weight: 1, previous: 0, remembered: false });
  r = await call('POST', '/api/v1/servers/undrain', { ...target, weight: 5 });
  assert.equal(weightOf((await call('GET', '/api/v1/services')).json, '198.18.1.11'), 5);
  r = await call('POST', '/api/v1/servers/drain', { service: SVC, dest: { addr: '198.18.1.99', port: 80 } });
  assert.equal(r.status, 404);
  r = await call('POST', '/api/v1/servers/drain', { service: { ...SVC, port: 81 }, dest: { addr: '198.18.1.11', port: 80 } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.message, 'No such service');
});

test('timeouts, zero, connections, counters, addresses, version', async () => {
  const { call } = app();
  let r = await call('PUT', '/api/v1/timeouts', { tcp: 100 });
  assert.equal(r.status, 200, r.text);
  r = await call('GET', '/api/v1/timeouts');
  assert.equal(r.json.tcp, 100);
  assert.ok(r.json.udp > 0, 'omitted timeouts stay unchanged');
  r = await call('POST', '/api/v1/zero');
  assert.equal(r.status, 200, r.text);
  r = await call('POST', '/api/v1/zero', { service: { ...SVC, port: 99 } });
  assert.equal(r.status, 404);
  r = await call('GET', '/api/v1/connections');
  assert.deepEqual(r.json, { conns: [] });
  r = await call('GET', '/api/v1/counters');
  assert.equal(r.json.conns.capacity > 0, true);
  assert.equal(r.json.ports[0].ifname, 'lan0');
  r = await call('POST', '/api/v1/addresses', { addr: '198.18.1.101', plen: 32, ifname: 'lan0' });
  assert.equal(r.status, 201, r.text);
  r = await call('POST', '/api/v1/addresses', { addr: '198.18.1.101', plen: 32, ifname: 'lan0' });
  assert.equal(r.status, 409);
  r = await call('GET', '/api/v1/addresses');
  assert.ok(r.json.addresses.some((a: { addr: string }) => a.addr === '198.18.1.101'));
  r = await call('GET', '/api/v1/version');
  assert.equal(r.json.server, 'tsvsd');
});

test('GET /metrics renders the director state in the text format', async () => {
  const { call } = app();
  const r = await call('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  const samples = parseExposition(r.text);
  const w = samples.find((s) => s.name === 'node_ipvs_backend_weight');
  assert.deepEqual(w, {
    name: 'node_ipvs_backend_weight',
    labels: { local_address: VIP, local_mark: '', local_port: '80', proto: 'TCP', remote_address: '198.18.1.11', remote_port: '80' },
    value: 3,
  });
  assert.ok(samples.some((s) => s.name === 'tsvs_conn_table_capacity' && s.value > 0));
  assert.ok(samples.some((s) => s.name === 'tsvs_port_rx_frames_total' && s.labels.ifname === 'lan0'));
});

test('health: off without a getter, the snapshot with one (and in /metrics)', async () => {
  let r = await app().call('GET', '/api/v1/health');
  assert.deepEqual(r.json, { enabled: false, pools: [], counters: null });
  const snap: HealthSnapshot = {
    pools: [{ service: `TCP ${VIP}:80`, quorumUp: true, sorryActive: false, liveWeight: 3, servers: [{ addr: '198.18.1.11', port: 80, state: 'up', lastChange: null, checks: 4, failures: 0, transitions: 0, lastLatencyMs: 1, lastDetail: 'ok', weight: 3 }] }],
    counters: { checks: 4, failures: 0, transitions: 0, quorumChanges: 0, requestErrors: 0 },
  };
  const h = app({ health: () => snap });
  r = await h.call('GET', '/api/v1/health');
  assert.equal(r.json.enabled, true);
  assert.deepEqual(r.json.pools, snap.pools);
  r = await h.call('GET', '/metrics');
  assert.ok(parseExposition(r.text).some((s) => s.name === 'tsvs_backend_up' && s.value === 1));
});

test('token: every data route, /metrics included, needs the bearer token; the dashboard shell does not', async () => {
  const { call } = app({ token: 's3cret', dashboard: true });
  for (const [m, p] of [
    ['GET', '/api/v1/services'],
    ['GET', '/metrics'],
    ['GET', '/api/v1/health'],
    ['POST', '/api/v1/zero'],
  ] as const) {
    let r = await call(m, p);
    assert.equal(r.status, 401, `${m} ${p} without a token`);
    assert.equal(r.res.headers.get('www-authenticate'), 'Bearer realm="tsvsd"');
    r = await call(m, p, undefined, { authorization: 'Bearer wrong' });
    assert.equal(r.status, 401, `${m} ${p} with a wrong token`);
    r = await call(m, p, undefined, { authorization: 'Bearer s3cret' });
    assert.equal(r.status, 200, `${m} ${p} with the token`);
  }
  // The drain must not have happened without the token.
  let r = await call('POST', '/api/v1/servers/drain', { service: SVC, dest: { addr: '198.18.1.11', port: 80 } });
  assert.equal(r.status, 401);
  r = await call('GET', '/api/v1/services', undefined, { authorization: 'Bearer s3cret' });
  assert.equal(weightOf(r.json, '198.18.1.11'), 3);
  for (const p of ['/', '/dashboard.js', '/dashboard.css']) {
    r = await call('GET', p);
    assert.equal(r.status, 200, p);
  }
  assert.match(r.res.headers.get('content-type')!, /text\/css/);
  r = await call('GET', '/');
  assert.match(r.text, /<script src="\/dashboard.js"/);
  assert.match(r.res.headers.get('content-security-policy')!, /default-src 'self'/);
});

test('dashboard off: / is 404; Host guard refuses foreign hosts without a token', async () => {
  const { call } = app({ allowedHosts: new Set(['127.0.0.1', 'localhost']) });
  let r = await call('GET', '/', undefined, { host: '127.0.0.1:9200' });
  assert.equal(r.status, 404);
  r = await call('GET', '/api/v1/services', undefined, { host: 'evil.example:9200' });
  assert.equal(r.status, 403);
  r = await call('GET', '/api/v1/services', undefined, { host: 'localhost:9200' });
  assert.equal(r.status, 200);
  // A page elsewhere posting to the API (CSRF) is refused; the dashboard's own origin is fine.
  r = await call('POST', '/api/v1/zero', undefined, { host: '127.0.0.1:9200', origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  r = await call('POST', '/api/v1/zero', undefined, { host: '127.0.0.1:9200', origin: 'null' });
  assert.equal(r.status, 403);
  r = await call('POST', '/api/v1/zero', undefined, { host: '127.0.0.1:9200', origin: 'http://127.0.0.1:9200' });
  assert.equal(r.status, 200);
});

test('parseAdminListen and isLoopback', () => {
  assert.deepEqual(parseAdminListen('127.0.0.1:9200'), { host: '127.0.0.1', port: 9200 });
  assert.deepEqual(parseAdminListen('[::1]:9200'), { host: '::1', port: 9200 });
  assert.deepEqual(parseAdminListen('unix:/run/tsvs/admin.sock'), { path: '/run/tsvs/admin.sock' });
  assert.throws(() => parseAdminListen('9200'), AdminConfigError);
  assert.throws(() => parseAdminListen('unix:rel.sock'), /absolute/);
  assert.throws(() => parseAdminListen('host.example:80'), /not an IP address/);
  assert.throws(() => parseAdminListen('1.2.3.4:99999'), /out of range/);
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.1.2.3') && isLoopback('::1') && isLoopback('localhost'));
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('198.18.1.2') && !isLoopback('::'));
});

test('startAdmin: refuses a non-loopback address without a token; serves TCP and a 0600 unix socket', async () => {
  const { handler } = director();
  const log = () => {};
  await assert.rejects(startAdmin({ listen: { host: '0.0.0.0', port: 0 }, handler, dashboard: false, log }), (e: Error) => {
    assert.ok(e instanceof AdminConfigError);
    assert.match(e.message, /not a loopback address: give --admin-token/);
    return true;
  });
  const tcp = await startAdmin({ listen: { host: '127.0.0.1', port: 0 }, handler, dashboard: true, log });
  try {
    assert.ok(tcp.port > 0);
    const r = await fetch(`${tcp.address}/api/v1/services`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as ListResult).services.length, 1);
    assert.equal((await fetch(`${tcp.address}/`)).status, 200);
  } finally {
    await tcp.close();
  }
  const exposed = await startAdmin({ listen: { host: '0.0.0.0', port: 0 }, token: 't', handler, dashboard: false, log });
  try {
    assert.equal((await fetch(`http://127.0.0.1:${exposed.port}/metrics`)).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${exposed.port}/metrics`, { headers: { authorization: 'Bearer t' } })).status, 200);
  } finally {
    await exposed.close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-admin-'));
  const path = join(dir, 'admin.sock');
  const unix = await startAdmin({ listen: { path }, handler, dashboard: false, log });
  try {
    assert.equal(unix.address, `unix:${path}`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ socketPath: path, path: '/metrics', headers: { host: 'whatever' } }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(body, /^node_ipvs_backend_weight\{.*\} 3$/m);
  } finally {
    await unix.close();
    assert.ok(!existsSync(path), 'close removes the socket file');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a browser page cannot change state: cross-origin, cross-site, form, text/plain and type-less requests are refused; reads stay open', async () => {
  const refusals = newAdminRefusals();
  const { a, call, dp } = app({ allowedHosts: new Set(['127.0.0.1', 'localhost']), refusals });
  const host = { host: '127.0.0.1:9200' };
  const table = () => JSON.stringify(dp.handle({ v: 1, id: 1, op: 'list' }));
  const before = table();
  // What an HTML form or a "simple" fetch() can send, to every state-changing route.
  const routes: Array<[string, string]> = [
    ['POST', '/api/v1/flush'],
    ['POST', '/api/v1/reload'],
    ['POST', '/api/v1/zero'],
    ['DELETE', '/api/v1/services'],
    ['POST', '/api/v1/servers'],
    ['PUT', '/api/v1/timeouts'],
  ];
  const simple = ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain', 'text/plain;charset=UTF-8', 'application/jsonx', 'application/json-patch+json'];
  let n415 = 0;
  for (const [method, path] of routes) {
    for (const type of simple) {
      const r = await call(method, path, JSON.stringify({ service: SVC }), { ...host, 'content-type': type });
      assert.equal(r.status, 415, `${method} ${path} ${type}`);
      assert.deepEqual(r.json.error.code, 'EINVAL');
      assert.match(r.json.error.message, /must be Content-Type: application\/json/);
      n415++;
    }
    // No Content-Type at all (fetch with no body, sendBeacon): refused too.
    const bare = await a.request(path, { method, headers: host });
    assert.equal(bare.status, 415, `${method} ${path} without a type`);
    n415++;
  }
  // JSON from another origin, or a browser saying so (Sec-Fetch-Site), is refused before anything runs.
  for (const h of <Array<Record<string, string>>>[{ origin: 'http://evil.example' }, { origin: 'null' }, { origin: 'http://127.0.0.1:9201' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }]) {
    const r = await call('POST', '/api/v1/flush', {}, { ...host, ...h });
    assert.equal(r.status, 403, JSON.stringify(h));
    assert.equal(r.json.error.code, 'EPERM');
    assert.match(r.json.error.message, /cross-origin request refused/);
  }
  // DNS rebinding: the page's own origin, but a Host that is not the listener.
  let r = await call('POST', '/api/v1/flush', {}, { host: 'rebind.example:9200', origin: 'http://rebind.example:9200' });
  assert.equal(r.status, 403);
  assert.match(r.json.error.message, /Host rebind\.example is not allowed/);
  assert.equal(table(), before, 'nothing changed');
  // Reads stay open, whatever Origin a browser names (it cannot read the answer without CORS anyway).
  r = await call('GET', '/api/v1/services', undefined, { ...host, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
  assert.equal(r.status, 200);
  // The API's own page and scripts (same origin, JSON) change state.
  r = await call('POST', '/api/v1/zero', undefined, { ...host, origin: 'http://127.0.0.1:9200', 'sec-fetch-site': 'same-origin' });
  assert.equal(r.status, 200, r.text);
  r = await call('POST', '/api/v1/zero', {}, { ...host, 'content-type': 'application/json; charset=utf-8' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(refusals, { host: 1, crossOrigin: 5, contentType: n415, tooLarge: 0, token: 0, tooManyClients: 0 });
  r = await call('GET', '/metrics', undefined, host);
  assert.match(r.text, new RegExp(`^tsvs_admin_refused_total\\{reason="content_type"\\} ${n415}$`, 'm'));
  assert.match(r.text, /^tsvs_admin_refused_total\{reason="cross_origin"\} 5$/m);
});

test('bodies over the limit are answered 413 (JSON) and the connection closed, by Content-Length or while reading a chunked body', async () => {
  const refusals = newAdminRefusals();
  const { call } = app({ refusals });
  const big = JSON.stringify({ service: SVC, pad: 'x'.repeat(ADMIN_MAX_BODY) });
  let r = await call('POST', '/api/v1/services', big);
  assert.equal(r.status, 413);
  assert.equal(r.res.headers.get('connection'), 'close');
  assert.deepEqual(r.json.error, { code: 'EINVAL', message: `request body too large (limit ${ADMIN_MAX_BODY} bytes)` });
  // A streamed body (no Content-Length) is cut off once it passes the limit, not read to its end.
  let pulled = 0;
  const stream = new ReadableStream({
    pull(c) {
      pulled++;
      if (pulled > 10_000) c.close();
      else c.enqueue(new Uint8Array(16 * 1024).fill(0x20));
    },
  });
  r = await call('POST', '/api/v1/services', stream);
  assert.equal(r.status, 413);
  assert.ok(pulled < 20, `read ${pulled} chunks of a 160 MB body`);
  assert.equal(refusals.tooLarge, 2);
  r = await call('POST', '/api/v1/services', JSON.stringify({ service: { ...SVC, port: 81 } }));
  assert.equal(r.status, 201, 'a normal body still passes');
});

/** One raw HTTP exchange over TCP: what came back and when the server closed. */
function rawHttp(port: number, text: string | null): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = netConnect(port, '127.0.0.1');
    let reply = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (reply += d));
    s.on('error', () => {});
    s.on('close', () => resolve({ reply, closedAfterMs: Date.now() - t0 }));
    if (text !== null) s.write(text);
  });
}

test('startAdmin limits: slow headers and slow bodies get 408 and close; beyond maxConnections 503 JSON', async () => {
  const { handler } = director();
  const admin = await startAdmin({
    listen: { host: '127.0.0.1', port: 0 },
    handler,
    dashboard: false,
    log: () => {},
    limits: { maxConnections: 4, headersTimeoutMs: 500, requestTimeoutMs: 1000, keepAliveTimeoutMs: 300 },
  });
  try {
    // Slow-loris: half a request line, then nothing.
    const slow = await rawHttp(admin.port, 'GET /api/v1/serv');
    assert.match(slow.reply, /^HTTP\/1\.1 408/);
    assert.ok(slow.closedAfterMs < 3000, `closed after ${slow.closedAfterMs} ms`);
    // Headers complete, body promised but never sent.
    const body = await rawHttp(admin.port, 'POST /api/v1/zero HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{');
    assert.ok(body.closedAfterMs < 4000, `closed after ${body.closedAfterMs} ms`);
    // An idle connection that sends nothing at all does not stay either.
    const idle = await rawHttp(admin.port, null);
    assert.ok(idle.closedAfterMs < 4000, `idle closed after ${idle.closedAfterMs} ms`);

    // Four connections held open; the fifth is answered 503 with a JSON body and closed.
    const held = Array.from({ length: 4 }, () => netConnect(admin.port, '127.0.0.1'));
    await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
    const over = await rawHttp(admin.port, 'GET /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.match(over.reply, /^HTTP\/1\.1 503/);
    assert.match(over.reply, /connection: close/i);
    assert.match(over.reply, /\{"error":\{"code":"EBUSY","message":"too many admin API connections: try again"\}\}/);
    assert.equal(admin.refusals.tooManyClients, 1);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await fetch(`${admin.address}/api/v1/services`)).status, 200, 'served again once slots are free');
  } finally {
    await admin.close();
  }
});
