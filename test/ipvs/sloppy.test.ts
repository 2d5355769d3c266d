// sloppy_tcp across directors with no shared state: mh gives a moved flow the same real server, the sysctl lets its first non-SYN packet create the conn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inPacket, newTuple, R, V_FORWARD, V_PASS, type PacketTuple } from '../../src/ipvs/core.ts';
import { Ipvs, type ServiceKey } from '../../src/ipvs/service.ts';
import { Fwd } from '../../src/ipvs/types.ts';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { planReload } from '../../src/ctl/reload.ts';

const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const VIP = ip('198.18.1.100');
const TCP = 6;
const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08;
const K: ServiceKey = { proto: TCP, addr: VIP, port: 80 };

/** A director: mh with the port flag over three DR real servers, listed in the same order on every director. */
function director(sloppy: number): Ipvs {
  const ipvs = new Ipvs({ connCapacity: 4096, statsSlots: 64 });
  ipvs.tick(0);
  ipvs.addService({ ...K, sched: 'mh', flags: 2 << 3 });
  for (const rs of ['198.18.1.11', '198.18.1.12', '198.18.1.13']) ipvs.addDest(K, { addr: ip(rs), port: 80, fwd: Fwd.Route, weight: 1 });
  ipvs.sysctl.sloppyTcp = sloppy;
  return ipvs;
}

function pkt(t: PacketTuple, saddr: number, sport: number, flags: number): PacketTuple {
  t.proto = TCP; t.saddr = saddr; t.sport = sport; t.daddr = VIP; t.dport = 80; t.tcpFlags = flags; t.len = 52; t.fwmark = 0;
  return t;
}

test('sloppy_tcp: a flow moved to another director keeps its real server; its first packet there creates an ESTABLISHED conn', () => {
  const a = director(1);
  const b = director(1);
  const t = newTuple();
  for (let i = 0; i < 300; i++) {
    const cip = ip('198.18.0.2') + (i % 7);
    const port = 20000 + i;
    assert.equal(inPacket(a, pkt(t, cip, port, SYN)), V_FORWARD);
    const rs = a.conns.daddr[t.conn]!;
    // ECMP moves the flow: director b has never seen it.
    assert.equal(inPacket(b, pkt(t, cip, port, ACK | PSH)), V_FORWARD);
    assert.equal(b.conns.daddr[t.conn]!, rs, 'same real server on both directors');
  }
  const states = new Set(b.listConns().map((c) => c.state));
  // The kernel's INPUT_ONLY table: NONE + ack -> ESTABLISHED (ip_vs_proto_tcp.c).
  assert.deepEqual([...states], ['ESTABLISHED']);
});

test('sloppy_tcp: a FIN creates a CLOSE conn, a RST never creates one; without sloppy_tcp only a SYN does', () => {
  const b = director(1);
  const t = newTuple();
  assert.equal(inPacket(b, pkt(t, ip('198.18.0.9'), 1000, FIN | ACK)), V_FORWARD);
  assert.equal(b.listConns()[0]!.state, 'CLOSE');
  assert.equal(inPacket(b, pkt(t, ip('198.18.0.9'), 1001, RST)), V_PASS);
  assert.equal(t.reason, R.NOT_NEW);

  const c = director(0);
  assert.equal(inPacket(c, pkt(t, ip('198.18.0.9'), 1002, ACK)), V_PASS);
  assert.equal(t.reason, R.NOT_NEW);
  assert.equal(c.listConns().length, 0);
  assert.equal(inPacket(c, pkt(t, ip('198.18.0.9'), 1002, SYN)), V_FORWARD);
});

function dataplane(sysctl?: Record<string, number>) {
  const lan = new MemoryPort('lan0', { mac: new Uint8Array([2, 0, 0, 0, 1, 1]) });
  const config = validateConfig({ interfaces: ['lan0'], addresses: ['198.18.1.100/32@lan0'], ...(sysctl ? { sysctl } : {}) });
  return new Dataplane([lan], config, () => {});
}

test('sysctl: YAML sets it at start, set-sysctl changes it, a bad value is refused and changes nothing', () => {
  assert.equal(dataplane().ipvs.sysctl.sloppyTcp, 0);
  const dp = dataplane({ sloppy_tcp: 1, sloppy_sctp: 1 });
  assert.equal(dp.ipvs.sysctl.sloppyTcp, 1);
  let r = dp.handle({ v: 1, id: 1, op: 'get-sysctl' });
  assert.deepEqual(r.ok && r.result, { sloppy_tcp: 1, sloppy_sctp: 1 });
  r = dp.handle({ v: 1, id: 2, op: 'set-sysctl', sysctl: { sloppy_tcp: 0 } });
  assert.deepEqual(r.ok && r.result, { sloppy_tcp: 0, sloppy_sctp: 1 });
  assert.equal(dp.ipvs.sysctl.sloppyTcp, 0);
  assert.throws(() => validateConfig({ sysctl: { sloppy_tcp: 2 } }), /sysctl\.sloppy_tcp/);
  assert.throws(() => validateConfig({ sysctl: { secure_tcp: 1 } }), /sysctl/);
});

test('reload: a changed sysctl is one set-sysctl request, undone by the old values', () => {
  const old = validateConfig({});
  const next = validateConfig({ sysctl: { sloppy_tcp: 1 } });
  const plan = planReload(old, next);
  assert.deepEqual(plan.requests, [{ op: 'set-sysctl', sysctl: { sloppy_tcp: 1, sloppy_sctp: 0 } }]);
  assert.deepEqual(plan.undo, [[{ op: 'set-sysctl', sysctl: { sloppy_tcp: 0, sloppy_sctp: 0 } }]]);
  assert.deepEqual(planReload(next, next).requests, []);
});
