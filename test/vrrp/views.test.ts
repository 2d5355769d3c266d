// What an operator sees of VRRP: the tsvs_vrrp_* metrics, `tsvs vrrp`'s table, notify scripts with keepalived's arguments, and tracking (link, quorum) in a hosted instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { renderMetrics } from '../../src/api/metrics.ts';
import { formatVrrp } from '../../src/vrrp/format.ts';
import { VrrpNotifier, defaultScriptRunner, splitCommand } from '../../src/vrrp/notify.ts';
import type { VrrpEvent } from '../../src/vrrp/host.ts';
import { parseExposition, checkExposition } from '../api/exposition.ts';
import { mac } from '../packet/builder.ts';

function hosted(instance: Record<string, unknown>, links: Map<string, boolean>, services: unknown[] = []) {
  const port = new MemoryPort('lan0', { mac: mac('02:00:00:00:01:02'), maxFrame: 2048 });
  const events: VrrpEvent[] = [];
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: ['198.18.1.2/24@lan0'],
    services,
    vrrp: { instances: [{ name: 'VI_1', interface: 'lan0', vrid: 51, addresses: ['198.18.1.100/32'], ...instance }] },
  });
  const dp = new Dataplane([port], config, () => {}, null, (e) => events.push(e), { linkState: (n) => links.get(n), linkPollMs: 100 });
  const run = (from: number, to: number) => {
    for (let t = from; t <= to; t += 10) {
      dp.director.runOnce(t);
      dp.tick(t);
      port.drain();
    }
  };
  return { dp, events, run, snap: () => dp.vrrp!.snapshot().instances[0]! };
}

test('vrrp views: metrics, the tsvs vrrp table', () => {
  const h = hosted({ priority: 120 }, new Map([['lan0', true]]));
  h.dp.start(0);
  h.run(0, 5000);
  const snap = h.dp.vrrp!.snapshot();
  const text = renderMetrics({ list: { version: '1.2.1', size: 4096, services: [] }, counters: h.dp.counters(), vrrp: snap });
  checkExposition(text);
  const s = parseExposition(text);
  const get = (name: string) => s.find((x) => x.name === name && x.labels.instance === 'VI_1');
  assert.equal(get('tsvs_vrrp_state')!.value, 2);
  assert.deepEqual(get('tsvs_vrrp_state')!.labels, { instance: 'VI_1', interface: 'lan0', vrid: '51' });
  assert.equal(get('tsvs_vrrp_priority')!.value, 120);
  assert.equal(get('tsvs_vrrp_transitions_total')!.value, 2);
  assert.ok(get('tsvs_vrrp_adverts_sent_total')!.value >= 2);
  assert.match(text, /# HELP tsvs_vrrp_state State of the VRRP instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP\./);
  const table = formatVrrp(snap);
  const [head, row] = table.split('\n');
  assert.match(head!, /^INSTANCE\s+IFACE\s+VRID\s+VER\s+STATE\s+PRIO\s+MASTER/);
  assert.match(row!, /^VI_1\s+lan0\s+51\s+v2\s+MASTER\s+120\s+198\.18\.1\.2\s+1s\s+\d+\s+0\s+0\s+[\d.]+s\s+198\.18\.1\.100\/32@lan0$/);
  assert.equal(formatVrrp({ instances: [], groups: [], unmatched: {} }), 'no VRRP instance is configured\n');
});

test('vrrp tracking: the link of the interface or a tracked one down means FAULT; a weight moves the priority instead', () => {
  const links = new Map([['lan0', true], ['eth9', true], ['eth8', true]]);
  const h = hosted({ track_interfaces: ['eth9', { name: 'eth8', weight: -30 }] }, links);
  h.dp.start(0);
  h.run(0, 4000);
  assert.equal(h.snap().state, 'MASTER');
  links.set('eth8', false);
  h.run(4010, 4200);
  assert.equal(h.snap().state, 'MASTER');
  assert.equal(h.snap().priority, 70);
  links.set('eth9', false);
  h.run(4210, 4400);
  assert.equal(h.snap().state, 'FAULT');
  assert.deepEqual(h.snap().faults, ['interface eth9 down']);
  assert.ok(!h.dp.director.isLocal(0xc6120164), 'FAULT releases the VIP');
  links.set('eth9', true);
  h.run(4410, 4600);
  assert.equal(h.snap().state, 'BACKUP');
  const faultEv = h.events.find((e) => e.to === 'FAULT')!;
  assert.match(faultEv.reason, /interface eth9 down/);
  // The instance's own interface counts too.
  links.set('lan0', false);
  h.run(4610, 4800);
  assert.equal(h.snap().state, 'FAULT');
});

test("vrrp tracking: a tracked service's quorum (from the health monitor) means FAULT or a weight", () => {
  const svc = [{ protocol: 'tcp', address: '198.18.1.100', port: 80, realservers: [{ address: '198.18.1.11' }] }];
  const h = hosted({ track_services: [{ service: 'tcp 198.18.1.100:80' }] }, new Map([['lan0', true]]), svc);
  h.dp.start(0);
  h.run(0, 4000);
  assert.equal(h.snap().state, 'MASTER');
  h.dp.vrrp!.trackService('tcp 198.18.1.100:80', false, 4000);
  assert.equal(h.snap().state, 'FAULT');
  assert.deepEqual(h.snap().faults, ['service tcp 198.18.1.100:80 without quorum']);
  h.dp.vrrp!.trackService('tcp 198.18.1.100:80', true, 4100);
  assert.equal(h.snap().state, 'BACKUP');
  const w = hosted({ priority: 150, track_services: [{ service: 'TCP 198.18.1.100:80', weight: -100 }] }, new Map([['lan0', true]]), svc);
  w.dp.start(0);
  w.dp.vrrp!.trackService('tcp 198.18.1.100:80', false, 0);
  assert.equal(w.snap().priority, 50);
  assert.equal(w.snap().state, 'BACKUP');
});

test("vrrp notify: notify_master/backup/fault and notify with keepalived's arguments (INSTANCE|GROUP NAME STATE PRIO)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-notify-'));
  try {
    const out = join(dir, 'calls');
    const script = join(dir, 'record.sh');
    writeFileSync(script, `#!/bin/sh\necho "$0 $*" >> ${out}\n`);
    chmodSync(script, 0o755);
    const cfg = validateConfig({
      interfaces: ['lan0'],
      vrrp: {
        instances: [{ name: 'VI_1', interface: 'lan0', vrid: 1, addresses: ['198.18.1.100'], notify_master: `${script} master-arg`, notify: script }],
        sync_groups: [{ name: 'G', instances: ['VI_1'], notify_fault: script }],
      },
    }).vrrp;
    const logs: string[] = [];
    const n = new VrrpNotifier(cfg, (_l, m) => logs.push(m), defaultScriptRunner(() => {}));
    n.handle({ kind: 'instance', name: 'VI_1', from: 'BACKUP', to: 'MASTER', reason: 'master down timer expired', priority: 100, at: 0 });
    n.handle({ kind: 'group', name: 'G', from: 'MASTER', to: 'FAULT', reason: 'interface eth1 down', priority: 0, at: 0 });
    await n.drain();
    const calls = readFileSync(out, 'utf8').trim().split('\n').sort();
    assert.deepEqual(calls, [script, `${script} INSTANCE VI_1 MASTER 100`, `${script} master-arg`].sort());
    assert.deepEqual(logs, ['VRRP instance VI_1: BACKUP -> MASTER: master down timer expired', 'VRRP sync group G: MASTER -> FAULT: interface eth1 down']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vrrp notify: commands are split into words and exec\'d without a shell (nothing is interpreted); failures are logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-notify-'));
  try {
    const out = join(dir, 'calls');
    const script = join(dir, 'record.sh');
    writeFileSync(script, `#!/bin/sh\nfor a in "$@"; do echo "[$a]" >> ${out}; done\nexit 3\n`);
    chmodSync(script, 0o755);
    assert.deepEqual(splitCommand(`a 'b c' "d \\"e\\"" f\\ g`), ['a', 'b c', 'd "e"', 'f g']);
    const logs: string[] = [];
    const run = defaultScriptRunner((_l, m) => logs.push(m));
    await run(`${script} 'two words' ;touch ${dir}/pwned $(id)`, ['INSTANCE', 'VI_1', 'MASTER', '100']);
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n'), ['[two words]', '[;touch]', `[${dir}/pwned]`, '[$(id)]', '[INSTANCE]', '[VI_1]', '[MASTER]', '[100]']);
    assert.ok(!existsSync(join(dir, 'pwned')), 'no shell ran the rest of the line');
    await run(join(dir, 'missing.sh'), []);
    assert.equal(logs.length, 2, logs.join('\n'));
    assert.match(logs[0]!, /notify command failed: .*record\.sh .*: exit 3/);
    assert.match(logs[1]!, /notify command failed: .*missing\.sh: spawn .*ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vrrp views: GET /api/v1/vrrp and /metrics through the admin API', async () => {
  const { createAdminApp } = await import('../../src/api/app.ts');
  const h = hosted({ priority: 90 }, new Map([['lan0', true]]));
  h.dp.start(0);
  h.run(0, 500);
  const a = createAdminApp({ handler: async (req) => h.dp.handle(req), dashboard: false, log: () => {} });
  const r = await a.request('/api/v1/vrrp');
  assert.equal(r.status, 200);
  const j = (await r.json()) as { instances: Array<{ name: string; state: string; priority: number }> };
  assert.deepEqual(j.instances.map((i) => [i.name, i.state, i.priority]), [['VI_1', 'BACKUP', 90]]);
  const m = await (await a.request('/metrics')).text();
  assert.match(m, /^tsvs_vrrp_state\{instance="VI_1",interface="lan0",vrid="51"\} 1$/m);
});

test("vrrp: an instance's address cannot be added or removed by hand (tsvs address add/del)", () => {
  const h = hosted({}, new Map([['lan0', true]]));
  h.dp.start(0);
  const add = h.dp.handle({ v: 1, id: 1, op: 'address-add', address: { addr: '198.18.1.100', plen: 32, ifname: 'lan0' } });
  assert.ok(!add.ok && /belongs to VRRP instance VI_1/.test(add.error.message));
  assert.ok(!h.dp.director.isLocal(0xc6120164));
  const del = h.dp.handle({ v: 1, id: 2, op: 'address-del', address: { addr: '198.18.1.100', plen: 32, ifname: 'lan0' } });
  assert.ok(!del.ok && /belongs to VRRP instance VI_1/.test(del.error.message));
});
