// The director core: control operations and errors, the packet path, persistence, quiesce, trash, thresholds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpvsError } from '../../src/ctl/errors.ts';
import { inPacket, newTuple, outPacket, R, V_DROP, V_FORWARD, V_PASS, V_UNREACH, type PacketTuple } from '../../src/ipvs/core.ts';
import { Ipvs, type ServiceKey } from '../../src/ipvs/service.ts';
import { ST_TOTAL } from '../../src/ipvs/stats.ts';
import { Fwd, SVC_F, type Scheduler } from '../../src/ipvs/types.ts';
import { getScheduler } from '../../src/ipvs/sched/registry.ts';

const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const VIP = ip('198.18.1.100');
const RS1 = ip('198.18.2.11');
const RS2 = ip('198.18.2.12');
const RS3 = ip('198.18.2.13');
const TCP = 6;
const UDP = 17;
const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;
const K: ServiceKey = { proto: TCP, addr: VIP, port: 80 };

function mk(capacity = 1024): Ipvs {
  const ipvs = new Ipvs({ connCapacity: capacity, statsSlots: 256, seed: 1 });
  ipvs.tick(0);
  return ipvs;
}

function pkt(t: PacketTuple, proto: number, saddr: number, sport: number, daddr: number, dport: number, flags = 0, len = 60): PacketTuple {
  t.proto = proto; t.saddr = saddr; t.sport = sport; t.daddr = daddr; t.dport = dport; t.tcpFlags = flags; t.len = len; t.fwmark = 0;
  return t;
}

function destOf(ipvs: Ipvs, t: PacketTuple): number {
  return ipvs.conns.daddr[t.conn]!;
}

function state(ipvs: Ipvs): unknown {
  return JSON.stringify({ s: ipvs.listServices(), c: ipvs.listConns(), t: ipvs.getTimeouts(), trash: ipvs.trash.length });
}

test('registry provides rr and wlc', () => {
  assert.ok(getScheduler('rr'));
  assert.ok(getScheduler('wlc'));
});

test('control errors leave state unchanged', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: 1 });
  const before = state(ipvs);
  const cases: [() => void, string, string][] = [
    [() => ipvs.addService({ ...K, sched: 'wlc' }), 'EEXIST', 'add-service'],
    [() => ipvs.addService({ ...K, port: 81, sched: 'nope' }), 'ENOENT', 'add-service'],
    [() => ipvs.editService({ ...K, port: 81, sched: 'rr' }), 'ESRCH', 'edit-service'],
    [() => ipvs.editService({ ...K, sched: 'nope' }), 'ENOENT', 'edit-service'],
    [() => ipvs.delService({ ...K, port: 81 }), 'ESRCH', 'delete-service'],
    [() => ipvs.zero({ ...K, port: 81 }), 'ESRCH', 'zero'],
    [() => ipvs.addDest({ ...K, port: 81 }, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1 }), 'ESRCH', 'add-server'],
    [() => ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 }), 'EEXIST', 'add-server'],
    [() => ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: -1 }), 'ERANGE', 'add-server'],
    [() => ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1, uThreshold: 5, lThreshold: 6 }), 'ERANGE', 'add-server'],
    [() => ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1, lThreshold: 1 }), 'ERANGE', 'add-server'],
    [() => ipvs.addDest(K, { addr: ip('224.0.0.1'), port: 80, fwd: Fwd.Masq, weight: 1 }), 'EINVAL', 'add-server'],
    [() => ipvs.addDest(K, { addr: 0, port: 80, fwd: Fwd.Masq, weight: 1 }), 'EINVAL', 'add-server'],
    [() => ipvs.editDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1 }), 'ENOENT', 'edit-server'],
    [() => ipvs.editDest(K, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: -5 }), 'ERANGE', 'edit-server'],
    [() => ipvs.editDest({ ...K, port: 81 }, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: 1 }), 'ESRCH', 'edit-server'],
    [() => ipvs.delDest(K, RS2, 80), 'ENOENT', 'delete-server'],
    [() => ipvs.delDest({ ...K, proto: UDP }, RS1, 80), 'ESRCH', 'delete-server'],
    [() => ipvs.setTimeouts({ tcp: -1, tcpfin: 0, udp: 0 }), 'EINVAL', 'set'],
    [() => ipvs.setTimeouts({ tcp: 10, tcpfin: 0, udp: 3_000_000 }), 'EINVAL', 'set'],
    [() => ipvs.listService({ ...K, port: 81 }), 'ESRCH', 'list'],
  ];
  for (const [fn, code, op] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof IpvsError && e.code === code && e.op === op, `${op} ${code}`);
    assert.equal(state(ipvs), before, `${op} ${code} changed state`);
  }
  assert.equal(new IpvsError('EEXIST', 'add-service').message, 'Service already exists');
});

test('setTimeouts: 0 leaves a value unchanged', () => {
  const ipvs = mk();
  assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
  ipvs.setTimeouts({ tcp: 0, tcpfin: 30, udp: 0 });
  assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpfin: 30, udp: 300 });
});

test('scheduler hooks: init, addDest, updDest, delDest, done, at the kernel points; dests newest first', () => {
  const calls: string[] = [];
  let i = 0;
  const spy: Scheduler = {
    name: 'spy',
    init: () => calls.push('init'),
    done: () => calls.push('done'),
    addDest: (_s, d) => calls.push(`add ${d.port}`),
    delDest: (s, d) => calls.push(`del ${d.port} in=${s.dests.includes(d)}`),
    updDest: (_s, d) => calls.push(`upd ${d.port}`),
    schedule: (s) => s.dests[i++ % s.dests.length] ?? null,
  };
  const ipvs = new Ipvs({ connCapacity: 16, statsSlots: 64, schedulers: (n) => (n === 'spy' ? spy : getScheduler(n)) });
  ipvs.addService({ ...K, sched: 'spy' });
  ipvs.addDest(K, { addr: RS1, port: 1, fwd: Fwd.Masq, weight: 1 });
  ipvs.addDest(K, { addr: RS1, port: 2, fwd: Fwd.Masq, weight: 1 });
  assert.deepEqual(ipvs.listService(K).dests.map((d) => d.port), [2, 1]);
  ipvs.editDest(K, { addr: RS1, port: 1, fwd: Fwd.Masq, weight: 0 });
  ipvs.delDest(K, RS1, 1);
  ipvs.editService({ ...K, sched: 'spy', flags: 0 });
  ipvs.editService({ ...K, sched: 'rr' });
  assert.deepEqual(calls, ['init', 'add 1', 'add 2', 'upd 1', 'del 1 in=false', 'done']);
});

test('TCP conn life through NAT: states, active/inactive, counters, expiry', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 8080, fwd: Fwd.Masq, weight: 1 });
  const d = () => ipvs.listService(K).dests[0]!;
  const t = newTuple();
  const CIP = ip('198.18.0.2');
  assert.equal(inPacket(ipvs, pkt(t, TCP, CIP, 40000, VIP, 80, SYN)), V_FORWARD);
  const c = t.conn;
  assert.equal(destOf(ipvs, t), RS1);
  assert.equal(ipvs.conns.dport[c], 8080);
  assert.deepEqual([d().activeConns, d().inactConns], [1, 0]);
  assert.equal(ipvs.listConns()[0]!.state, 'SYN_RECV');
  assert.equal(outPacket(ipvs, pkt(t, TCP, RS1, 8080, CIP, 40000, SYN | ACK, 60)), V_FORWARD);
  assert.equal(t.conn, c);
  assert.equal(inPacket(ipvs, pkt(t, TCP, CIP, 40000, VIP, 80, ACK, 52)), V_FORWARD);
  assert.equal(ipvs.listConns()[0]!.state, 'ESTABLISHED');
  inPacket(ipvs, pkt(t, TCP, CIP, 40000, VIP, 80, FIN | ACK, 52));
  assert.equal(ipvs.listConns()[0]!.state, 'CLOSE_WAIT');
  assert.deepEqual([d().activeConns, d().inactConns], [0, 1]);
  outPacket(ipvs, pkt(t, TCP, RS1, 8080, CIP, 40000, FIN | ACK, 52));
  assert.equal(ipvs.listConns()[0]!.state, 'TIME_WAIT');
  const s = ipvs.listService(K).stats;
  assert.deepEqual(s, { conns: 1, inpkts: 3, outpkts: 2, inbytes: 164, outbytes: 112 });
  assert.deepEqual(ipvs.totals().stats, s);
  // TIME_WAIT 120 s, through the wheel with a fake clock.
  ipvs.tick(119_000);
  assert.equal(ipvs.conns.count, 1);
  ipvs.tick(120_200);
  assert.equal(ipvs.conns.count, 0);
  assert.deepEqual([d().activeConns, d().inactConns], [0, 0]);
  // A non-SYN without a conn is not ours; a packet to no service either.
  assert.equal(inPacket(ipvs, pkt(t, TCP, CIP, 40001, VIP, 80, ACK)), V_PASS);
  assert.equal(t.reason, R.NOT_NEW);
  assert.equal(inPacket(ipvs, pkt(t, TCP, CIP, 40001, VIP, 81, SYN)), V_PASS);
  assert.equal(t.reason, R.NO_SERVICE);
  assert.equal(outPacket(ipvs, pkt(t, TCP, RS1, 8080, CIP, 1, ACK)), V_PASS);
});

test('DR conns use INPUT_ONLY and are not reachable by reply lookups; initial timeouts', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  inPacket(ipvs, pkt(t, TCP, 5, 1, VIP, 80, SYN));
  inPacket(ipvs, pkt(t, TCP, 5, 1, VIP, 80, ACK));
  inPacket(ipvs, pkt(t, TCP, 5, 1, VIP, 80, FIN | ACK));
  assert.equal(ipvs.listConns()[0]!.state, 'FIN_WAIT'); // INPUT would give CLOSE_WAIT
  assert.equal(outPacket(ipvs, pkt(t, TCP, RS1, 80, 5, 1, ACK)), V_PASS);
});

test('UDP conns always inactive, 300 s', () => {
  const ipvs = mk();
  const U: ServiceKey = { proto: UDP, addr: VIP, port: 53 };
  ipvs.addService({ ...U, sched: 'rr' });
  ipvs.addDest(U, { addr: RS1, port: 53, fwd: Fwd.Masq, weight: 1 });
  const t = newTuple();
  assert.equal(inPacket(ipvs, pkt(t, UDP, 5, 1, VIP, 53)), V_FORWARD);
  assert.equal(outPacket(ipvs, pkt(t, UDP, RS1, 53, 5, 1)), V_FORWARD);
  const d = ipvs.listService(U).dests[0]!;
  assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
  assert.equal(ipvs.listConns()[0]!.state, 'UDP');
  ipvs.tick(299_000);
  assert.equal(ipvs.conns.count, 1);
  ipvs.tick(300_200);
  assert.equal(ipvs.conns.count, 0);
});

test('one-packet scheduling: every datagram scheduled, conns not listed, freed at the next tick', () => {
  const ipvs = mk();
  const U: ServiceKey = { proto: UDP, addr: VIP, port: 53 };
  ipvs.addService({ ...U, sched: 'rr', flags: SVC_F.ONEPACKET });
  ipvs.addDest(U, { addr: RS1, port: 53, fwd: Fwd.Masq, weight: 1 });
  ipvs.addDest(U, { addr: RS2, port: 53, fwd: Fwd.Masq, weight: 1 });
  const t = newTuple();
  const seen = new Set<number>();
  for (let k = 0; k < 4; k++) {
    assert.equal(inPacket(ipvs, pkt(t, UDP, 5, 1, VIP, 53)), V_FORWARD);
    seen.add(destOf(ipvs, t));
  }
  assert.equal(seen.size, 2);
  assert.equal(ipvs.listConns().length, 0);
  ipvs.tick(200);
  assert.equal(ipvs.conns.count, 0);
  assert.equal(ipvs.listService(U).stats.conns, 4);
});

test('persistence with netmask: two clients of one /24 share a dest; template expiry', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 300, netmask: 0xffffff00 });
  for (const a of [RS1, RS2, RS3]) ipvs.addDest(K, { addr: a, port: 80, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  inPacket(ipvs, pkt(t, TCP, ip('198.18.0.2'), 1000, VIP, 80, SYN));
  const first = destOf(ipvs, t);
  for (let k = 0; k < 5; k++) {
    inPacket(ipvs, pkt(t, TCP, ip('198.18.0.77'), 2000 + k, VIP, 80, SYN));
    assert.equal(destOf(ipvs, t), first);
  }
  inPacket(ipvs, pkt(t, TCP, ip('198.18.9.2'), 1000, VIP, 80, SYN));
  assert.notEqual(destOf(ipvs, t), first);
  const tpls = ipvs.listConns().filter((c) => c.template);
  assert.equal(tpls.length, 2);
  assert.equal(tpls.find((c) => c.caddr === ip('198.18.0.0'))!.vport, 80);
  const dinfo = ipvs.listService(K).dests.find((d) => d.addr === first)!;
  assert.equal(dinfo.persistConns, 1);
  assert.equal(dinfo.inactConns + dinfo.activeConns, 6);
  assert.equal(ipvs.listService(K).stats.conns, 7); // templates are not counted
  // Conns (SYN_RECV, 60 s) expire first; templates 300 s after their last use.
  ipvs.tick(61_000);
  assert.equal(ipvs.listConns().filter((c) => !c.template).length, 0);
  ipvs.tick(299_000);
  assert.equal(ipvs.listConns().length, 2);
  ipvs.tick(300_200);
  assert.equal(ipvs.listConns().length, 0);
  // A template outliving a weight-0 dest keeps being used unless expire_quiescent_template.
  inPacket(ipvs, pkt(t, TCP, ip('198.18.0.2'), 1, VIP, 80, SYN));
  const p = destOf(ipvs, t);
  ipvs.editDest(K, { addr: p, port: 80, fwd: Fwd.Route, weight: 0 });
  inPacket(ipvs, pkt(t, TCP, ip('198.18.0.2'), 2, VIP, 80, SYN));
  assert.equal(destOf(ipvs, t), p);
  ipvs.sysctl.expireQuiescentTemplate = 1;
  inPacket(ipvs, pkt(t, TCP, ip('198.18.0.2'), 3, VIP, 80, SYN));
  assert.notEqual(destOf(ipvs, t), p);
  const inval = ipvs.listConns().filter((c) => c.template && c.vport === 0xffff);
  assert.equal(inval.length, 1);
});

test('persistent port-0 service: template on vport 0, conns keep their port', () => {
  const ipvs = mk();
  const Z: ServiceKey = { proto: TCP, addr: VIP, port: 0 };
  ipvs.addService({ ...Z, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 60, netmask: 0xffffffff });
  ipvs.addDest(Z, { addr: RS1, port: 0, fwd: Fwd.Route, weight: 1 });
  ipvs.addDest(Z, { addr: RS2, port: 0, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  inPacket(ipvs, pkt(t, TCP, 9, 1, VIP, 443, SYN));
  const d = destOf(ipvs, t);
  assert.equal(ipvs.conns.dport[t.conn], 443);
  inPacket(ipvs, pkt(t, TCP, 9, 2, VIP, 22, SYN));
  assert.equal(destOf(ipvs, t), d);
  assert.equal(ipvs.conns.dport[t.conn], 22);
  assert.deepEqual(ipvs.listConns().filter((c) => c.template).map((c) => [c.vport, c.dport]), [[0, 0]]);
  // Non-persistent port-0 service does not schedule.
  const ipvs2 = mk();
  ipvs2.addService({ ...Z, sched: 'rr' });
  ipvs2.addDest(Z, { addr: RS1, port: 0, fwd: Fwd.Route, weight: 1 });
  assert.equal(inPacket(ipvs2, pkt(t, TCP, 9, 1, VIP, 443, SYN)), V_UNREACH);
  assert.equal(t.reason, R.PORT_ZERO);
});

test('weight 0 quiesces: existing conns go on, new conns go elsewhere; none left → unreachable', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN));
  const q = destOf(ipvs, t);
  const c = t.conn;
  ipvs.editDest(K, { addr: q, port: 80, fwd: Fwd.Route, weight: 0 });
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, ACK)), V_FORWARD);
  assert.equal(t.conn, c);
  for (let p = 2; p < 6; p++) {
    inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, SYN));
    assert.notEqual(destOf(ipvs, t), q);
  }
  const other = q === RS1 ? RS2 : RS1;
  ipvs.editDest(K, { addr: other, port: 80, fwd: Fwd.Route, weight: 0 });
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 99, VIP, 80, SYN)), V_UNREACH);
  assert.equal(t.reason, R.NO_DEST);
  const d = ipvs.listService(K).dests.find((x) => x.addr === q)!;
  assert.equal(d.weight, 0);
});

test('removing a dest: expire_nodest_conn 0 drops its packets; 1 expires and reschedules; trash revive', () => {
  for (const mode of [0, 1]) {
    const ipvs = mk();
    ipvs.sysctl.expireNodestConn = mode;
    ipvs.addService({ ...K, sched: 'rr' });
    ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
    const t = newTuple();
    inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN));
    inPacket(ipvs, pkt(t, TCP, 7, 2, VIP, 80, SYN));
    ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Route, weight: 1 });
    ipvs.delDest(K, RS1, 80);
    if (mode === 0) {
      assert.equal(ipvs.conns.count, 2);
      assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, ACK)), V_DROP);
      assert.equal(t.reason, R.DEST_UNAVAILABLE);
      assert.equal(ipvs.trash.length, 1);
      assert.equal(ipvs.trash[0]!.inactConns + ipvs.trash[0]!.activeConns, 2);
      // Re-adding revives it with its conns' accounting.
      ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 3 });
      assert.equal(ipvs.trash.length, 0);
      const d = ipvs.listService(K).dests[0]!;
      assert.deepEqual([d.addr, d.weight, d.activeConns], [RS1, 3, 2]);
      assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, ACK)), V_FORWARD);
    } else {
      assert.equal(ipvs.conns.count, 0); // flushed at delete
      assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN)), V_FORWARD);
      assert.equal(destOf(ipvs, t), RS2);
    }
  }
});

test('dest trash is freed 120 s after its last conn', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  ipvs.delDest(K, RS1, 80);
  assert.equal(ipvs.trash.length, 1);
  for (let s = 60; s <= 240; s += 60) ipvs.tick(s * 1000);
  assert.equal(ipvs.trash.length, 0);
});

test('thresholds: overload at u_threshold, cleared below l_threshold or 3/4 of u', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1, uThreshold: 4 });
  const t = newTuple();
  for (let p = 1; p <= 4; p++) assert.equal(inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, SYN)), V_FORWARD);
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 5, VIP, 80, SYN)), V_UNREACH); // overloaded
  const flags = () => ipvs.destById[0]!.flags & 2;
  assert.equal(flags(), 2);
  // RST each: CLOSE 10 s, then expiry unbinds. 3 left: 3*4 < 4*3 false → still overloaded; 2 left → cleared.
  const close = (p: number) => {
    inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, ACK)); // SYN_RECV -> ESTABLISHED
    inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, RST)); // -> CLOSE, 10 s
  };
  close(1);
  ipvs.tick(10_200);
  assert.equal(flags(), 2);
  close(2);
  ipvs.tick(20_400);
  assert.equal(flags(), 0);
  // With l_threshold: cleared only below it.
  ipvs.editDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1, uThreshold: 3, lThreshold: 2 });
  inPacket(ipvs, pkt(t, TCP, 7, 10, VIP, 80, SYN));
  assert.equal(flags(), 2);
  close(10);
  ipvs.tick(31_000);
  assert.equal(flags(), 2); // total 2, not < 2
  // Editing with u_threshold 0 clears it.
  ipvs.editDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  assert.equal(flags(), 0);
});

test('conn_reuse_mode: a SYN on a TIME_WAIT conn reschedules; mode 0 follows the old conn', () => {
  for (const mode of [1, 0]) {
    const ipvs = mk();
    ipvs.sysctl.connReuseMode = mode;
    ipvs.addService({ ...K, sched: 'rr' });
    ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: 1 });
    ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1 });
    const t = newTuple();
    inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN));
    const d1 = destOf(ipvs, t);
    inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, ACK));
    inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, FIN | ACK));
    outPacket(ipvs, pkt(t, TCP, d1, 80, 7, 1, FIN | ACK));
    assert.equal(ipvs.listConns()[0]!.state, 'TIME_WAIT');
    inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN));
    assert.equal(ipvs.conns.count, 1);
    if (mode) assert.notEqual(destOf(ipvs, t), d1);
    else assert.equal(destOf(ipvs, t), d1);
    assert.equal(ipvs.listConns()[0]!.state, 'SYN_RECV');
  }
});

test('table full of established conns: new conns refused and counted, existing ones go on', () => {
  const ipvs = mk(4);
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  for (let p = 1; p <= 4; p++) {
    assert.equal(inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, SYN)), V_FORWARD);
    assert.equal(inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, ACK)), V_FORWARD);
  }
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 5, VIP, 80, SYN)), V_DROP);
  assert.equal(t.reason, R.TABLE_FULL);
  assert.equal(ipvs.reasons[R.TABLE_FULL], 1);
  assert.equal(ipvs.conns.overflow, 1);
  assert.equal(ipvs.conns.earlyDrop, 0);
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 3, VIP, 80, ACK)), V_FORWARD);
  assert.equal(ipvs.listConns().filter((c) => c.state === 'ESTABLISHED').length, 4);
});

test('table full under a SYN flood: half-open conns are early-dropped, established ones stay, counts add up', () => {
  const cap = 256;
  const ipvs = mk(cap);
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: 1 });
  ipvs.addDest(K, { addr: RS2, port: 80, fwd: Fwd.Masq, weight: 1 });
  const t = newTuple();
  // 16 established conns of a legitimate client.
  for (let p = 1; p <= 16; p++) {
    inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, SYN));
    inPacket(ipvs, pkt(t, TCP, 7, p, VIP, 80, ACK));
  }
  // 10,000 SYNs from random sources fill the table and keep coming.
  let rnd = 12345;
  const next = () => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0);
  const flood = 10_000;
  let refused = 0;
  for (let n = 0; n < flood; n++) {
    const v = inPacket(ipvs, pkt(t, TCP, ip('198.18.128.0') + (next() & 0x7fff), 1024 + (next() & 0x7fff), VIP, 80, SYN));
    if (v !== V_FORWARD) refused++;
    assert.ok(ipvs.conns.count <= cap);
  }
  assert.equal(ipvs.conns.count, cap);
  assert.equal(refused, 0, 'a half-open entry can always be evicted');
  assert.equal(ipvs.conns.overflow, 0);
  assert.equal(ipvs.conns.earlyDrop, flood - (cap - 16));
  // Dest counters stay consistent with the table.
  const conns = ipvs.listConns();
  const listed = ipvs.listService(K).dests.reduce((a, d) => a + d.activeConns + d.inactConns, 0);
  assert.equal(listed, conns.length);
  assert.equal(conns.filter((c) => c.state === 'ESTABLISHED').length, 16, 'established conns never evicted');
  // A new legitimate conn is admitted during the flood and completes its handshake.
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 100, VIP, 80, SYN)), V_FORWARD);
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 100, VIP, 80, ACK)), V_FORWARD);
  assert.equal(ipvs.listConns().filter((c) => c.state === 'ESTABLISHED').length, 17);
  // Its established packets keep flowing however many SYNs follow.
  for (let n = 0; n < 2 * cap; n++) inPacket(ipvs, pkt(t, TCP, ip('198.18.128.0') + (next() & 0x7fff), 2000 + n, VIP, 80, SYN));
  assert.equal(ipvs.listConns().filter((c) => c.state === 'ESTABLISHED').length, 17);
});

test('table full under a UDP flood: single-datagram conns are early-dropped, flows that carried more stay', () => {
  const cap = 64;
  const ipvs = mk(cap);
  const U: ServiceKey = { proto: UDP, addr: VIP, port: 53 };
  ipvs.addService({ ...U, sched: 'rr' });
  ipvs.addDest(U, { addr: RS1, port: 53, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  // 8 flows of a legitimate client, two datagrams each.
  for (let p = 1; p <= 8; p++) for (let k = 0; k < 2; k++) assert.equal(inPacket(ipvs, pkt(t, UDP, 7, p, VIP, 53)), V_FORWARD);
  for (let n = 0; n < 1000; n++) assert.equal(inPacket(ipvs, pkt(t, UDP, ip('198.18.128.1') + n, 4000 + n, VIP, 53)), V_FORWARD);
  assert.equal(ipvs.conns.count, cap);
  assert.equal(ipvs.conns.overflow, 0);
  assert.equal(ipvs.conns.earlyDrop, 1000 - (cap - 8));
  assert.equal(ipvs.listConns().filter((c) => c.caddr === 7).length, 8, 'the multi-datagram flows stay');
});

test('early drop under persistence: templates in use are kept, unassured idle ones go', () => {
  const cap = 8;
  const ipvs = mk(cap);
  ipvs.addService({ ...K, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 300 });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  let refused = 0;
  for (let n = 0; n < 200; n++) {
    if (inPacket(ipvs, pkt(t, TCP, ip('198.18.128.1') + n, 5000 + n, VIP, 80, SYN)) !== V_FORWARD) refused++;
    assert.ok(ipvs.conns.count <= cap);
    // Every admitted conn hangs under a live template of its own client.
    const c = t.conn >= 0 ? ipvs.conns.control[t.conn]! : -1;
    if (c >= 0) assert.ok(ipvs.conns.isUsed(c) && ipvs.conns.caddr[c] === ip('198.18.128.1') + n);
  }
  assert.ok(ipvs.conns.earlyDrop > 0);
  assert.equal(ipvs.conns.overflow, refused);
});

test('delete service, flush, zero', () => {
  const ipvs = mk();
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(K, { addr: RS1, port: 80, fwd: Fwd.Masq, weight: 1 });
  const t = newTuple();
  inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, SYN, 100));
  ipvs.zero(K);
  assert.deepEqual(ipvs.listService(K).stats, { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 });
  assert.equal(ipvs.totals().stats.inbytes, 100);
  ipvs.zero();
  assert.equal(ipvs.totals().stats.inbytes, 0);
  assert.equal(ipvs.stats.raw(ST_TOTAL, 3), 100);
  ipvs.delService(K);
  assert.equal(ipvs.listServices().length, 0);
  assert.equal(ipvs.trash.length, 1);
  // The conn's dest is gone: its packets are dropped.
  assert.equal(inPacket(ipvs, pkt(t, TCP, 7, 1, VIP, 80, ACK)), V_DROP);
  ipvs.addService({ ...K, sched: 'wlc' });
  ipvs.addService({ proto: UDP, addr: VIP, port: 53, sched: 'rr' });
  ipvs.flush();
  assert.equal(ipvs.listServices().length, 0);
});

test('fwmark service is looked up first and templates use IPPROTO_IP', () => {
  const ipvs = mk();
  const F: ServiceKey = { proto: TCP, addr: 0, port: 0, fwmark: 7 };
  ipvs.addService({ ...F, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 60, netmask: 0xffffffff });
  ipvs.addService({ ...K, sched: 'rr' });
  ipvs.addDest(F, { addr: RS1, port: 0, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  pkt(t, TCP, 9, 1, VIP, 80, SYN);
  t.fwmark = 7;
  assert.equal(inPacket(ipvs, t), V_FORWARD);
  assert.equal(destOf(ipvs, t), RS1);
  const tpl = ipvs.listConns().find((c) => c.template)!;
  assert.deepEqual([tpl.proto, tpl.vaddr, tpl.vport], ['IP', 7, 0]);
});

test('early drop keeps an idle DR-UDP client\'s template (never ASSURED, more than one packet) and a fresh NAT UDP conn', () => {
  const ipvs = mk(4);
  const U: ServiceKey = { proto: UDP, addr: VIP, port: 53 };
  ipvs.addService({ ...U, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 3600 });
  ipvs.addDest(U, { addr: RS1, port: 53, fwd: Fwd.Route, weight: 1 });
  const N: ServiceKey = { proto: UDP, addr: VIP, port: 54 };
  ipvs.addService({ ...N, sched: 'rr' });
  ipvs.addDest(N, { addr: RS2, port: 54, fwd: Fwd.Masq, weight: 1 });
  const t = newTuple();
  let now = 1000;
  ipvs.tick(now);
  // A DR-UDP client sends two datagrams; its conn expires (UDP 300 s), its template lives on, idle.
  for (let k = 0; k < 2; k++) assert.equal(inPacket(ipvs, pkt(t, UDP, 7, 5000, VIP, 53)), V_FORWARD);
  ipvs.tick((now += 301_000));
  const tpl = ipvs.conns.lookupTemplate(UDP, 7, VIP, 53);
  assert.ok(tpl >= 0 && ipvs.conns.nControl[tpl] === 0);
  // Three NAT UDP queries just sent: their replies may be on the way.
  for (let n = 0; n < 3; n++) assert.equal(inPacket(ipvs, pkt(t, UDP, 100 + n, 6000, VIP, 54)), V_FORWARD);
  assert.equal(ipvs.conns.count, 4);
  // The table is full: nothing may go, so the next one is refused.
  assert.equal(inPacket(ipvs, pkt(t, UDP, 200, 6000, VIP, 54)), V_DROP);
  assert.ok(ipvs.conns.isUsed(tpl), 'the idle client\'s template was early-dropped');
  assert.equal(ipvs.conns.earlyDrop, 0);
  // 60 s later the NAT queries are idle: one gives way.
  ipvs.tick((now += 60_000));
  assert.equal(inPacket(ipvs, pkt(t, UDP, 201, 6000, VIP, 54)), V_FORWARD);
  assert.equal(ipvs.conns.earlyDrop, 1);
  assert.ok(ipvs.conns.isUsed(tpl));
});

test('early drop still evicts a flood\'s one-packet persistent DR-UDP templates', () => {
  const cap = 16;
  const ipvs = mk(cap);
  const U: ServiceKey = { proto: UDP, addr: VIP, port: 53 };
  ipvs.addService({ ...U, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 3600 });
  ipvs.addDest(U, { addr: RS1, port: 53, fwd: Fwd.Route, weight: 1 });
  const t = newTuple();
  let refused = 0;
  for (let n = 0; n < 500; n++) if (inPacket(ipvs, pkt(t, UDP, ip('198.18.128.1') + n, 4000, VIP, 53)) !== V_FORWARD) refused++;
  assert.ok(ipvs.conns.earlyDrop > 400, `earlyDrop ${ipvs.conns.earlyDrop}`);
  assert.ok(refused < 100, `refused ${refused}`);
});
