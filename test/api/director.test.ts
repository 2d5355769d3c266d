// Admin API routes of the whole director: sysctl get/set against a real Dataplane, drain/undrain/announce through the control path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { errorResponse, okResponse, type AnnounceStatus, type Request } from '../../src/ctl/protocol.ts';
import type { RequestHandler } from '../../src/ctl/server.ts';
import { createAdminApp } from '../../src/api/app.ts';

function setup() {
  const lan = new MemoryPort('lan0', { mac: new Uint8Array([2, 0, 0, 0, 1, 1]) });
  const dp = new Dataplane([lan], validateConfig({ interfaces: ['lan0'], addresses: ['198.18.1.100/32@lan0'] }), () => {});
  // tsvsd's main thread answers the announce ops; here a stand-in for a director with bgp: and one without.
  const seen: string[] = [];
  let drained = false;
  const status = (): AnnounceStatus => ({ enabled: true, drained, daemon: 'bird', running: true, vips: [{ prefix: '198.18.1.100/32', announced: !drained, reason: drained ? 'drained' : 'quorum' }], peers: [], control: '/x' });
  const handler: RequestHandler = async (req: Request) => {
    seen.push(req.op);
    if (req.op === 'director-drain' || req.op === 'director-undrain') {
      drained = req.op === 'director-drain';
      return okResponse(req.id, status());
    }
    if (req.op === 'announce') return okResponse(req.id, status());
    return dp.handle(req);
  };
  const a = createAdminApp({ handler, dashboard: false, log: () => {} });
  const call = async (method: string, path: string, body?: unknown) => {
    // State changes must be JSON (the API refuses form-like requests a browser page could send).
    const res = await a.request(path, { method, headers: method !== 'GET' ? { 'content-type': 'application/json' } : {}, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, json: (await res.json()) as any };
  };
  return { dp, call, seen };
}

test('GET/PUT /api/v1/sysctl: sloppy_tcp reaches the data plane; a bad value is 400 and changes nothing', async () => {
  const { dp, call } = setup();
  assert.deepEqual((await call('GET', '/api/v1/sysctl')).json, { sloppy_tcp: 0, sloppy_sctp: 0 });
  const r = await call('PUT', '/api/v1/sysctl', { sloppy_tcp: 1 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { sloppy_tcp: 1, sloppy_sctp: 0 });
  assert.equal(dp.ipvs.sysctl.sloppyTcp, 1);
  assert.equal((await call('PUT', '/api/v1/sysctl', { sloppy_tcp: 2 })).status, 400);
  assert.equal((await call('PUT', '/api/v1/sysctl', { secure_tcp: 1 })).status, 400);
  assert.equal(dp.ipvs.sysctl.sloppyTcp, 1);
});

test('POST /api/v1/director/drain and undrain go through the control path and answer the new status', async () => {
  const { call, seen } = setup();
  let r = await call('POST', '/api/v1/director/drain');
  assert.equal(r.status, 200);
  assert.equal(r.json.drained, true);
  assert.equal(r.json.vips[0].announced, false);
  r = await call('GET', '/api/v1/director');
  assert.equal(r.json.drained, true);
  r = await call('POST', '/api/v1/director/undrain');
  assert.equal(r.json.vips[0].reason, 'quorum');
  assert.deepEqual(seen, ['director-drain', 'announce', 'director-undrain']);
});

test('drain on a director without bgp: is refused (400) with the reason', async () => {
  const handler: RequestHandler = async (req: Request) => errorResponse(req.id, req.op, 'EINVAL', 'this director announces no routes (no bgp: in its configuration)');
  const a = createAdminApp({ handler, dashboard: false, log: () => {} });
  const res = await a.request('/api/v1/director/drain', { method: 'POST', headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as any).error.message, /no bgp:/);
});
