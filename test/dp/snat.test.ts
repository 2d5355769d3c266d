// Golden SNAT frames: a connection a real server opens leaves from a director address and port; the reply is mapped back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { Drop } from '../../src/dp/drops.ts';
import { LPORT_MIN } from '../../src/ipvs/laddr.ts';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { Verdict } from '../../src/packet/parse.ts';
import { out, send } from './fullnat-rig.ts';

const LAN_MAC = '02:00:00:00:01:01';
const NAT_MAC = '02:00:00:00:01:02';
const ROUTER_MAC = '02:00:00:00:0a:01';
const RS_MAC = '02:00:00:00:0b:01';
const RS = '198.18.2.11';
const SNAT = '198.18.1.60';
const PEER = '198.18.0.2';

function setup() {
  const lan = new MemoryPort('lan0', { mac: mac(LAN_MAC), maxFrame: 4096 });
  const nat = new MemoryPort('nat0', { mac: mac(NAT_MAC), maxFrame: 4096 });
  const dp = new Dataplane([lan, nat], validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: ['198.18.1.2/24@lan0', '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    snat: [{ source: '198.18.2.0/24', address: SNAT, interface: 'lan0' }],
  }), () => {});
  const d = dp.director;
  d.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  d.neigh.learn(ip(RS), 1, mac(RS_MAC), 0, 0, true);
  lan.drain();
  nat.drain();
  return { lan, nat, dp, d };
}

test('SNAT: RS:sport → PEER:9090 leaves as SNAT:lport, the reply comes back to RS:sport; other sources are not forwarded', () => {
  const { lan, nat, dp, d } = setup();
  assert.ok(d.isLocal(ip(SNAT)), 'the director owns the SNAT address');
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: RS, dst: PEER, ttl: 64 }).tcp({ sport: 33000, dport: 9090, flags: 0x02, seq: 1 }));
  d.runOnce(1);
  const [a] = out(lan);
  assert.ok(a);
  assert.equal(a.v, Verdict.OK);
  assert.equal(a.p.saddr, ip(SNAT));
  assert.equal(a.p.sport, LPORT_MIN);
  assert.equal(a.p.daddr, ip(PEER));
  assert.equal(a.p.dport, 9090);
  assert.equal(a.p.ttl, 63, 'forwarded: TTL decremented');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: PEER, dst: SNAT, ttl: 63 }).tcp({ sport: 9090, dport: LPORT_MIN, flags: 0x12, seq: 7, ack: 2 }));
  d.runOnce(2);
  const [b] = out(nat);
  assert.ok(b, 'the reply reaches the real server');
  assert.equal(b.v, Verdict.OK);
  assert.equal(b.p.saddr, ip(PEER));
  assert.equal(b.p.sport, 9090);
  assert.equal(b.p.daddr, ip(RS));
  assert.equal(b.p.dport, 33000);
  // The conn is in the table with its state, and listed.
  const [conn] = dp.ipvs.listConns();
  assert.equal(conn!.state, 'SYN_RECV');
  const l = dp.handle({ v: 1, id: 1, op: 'snat-list' });
  assert.ok(l.ok);
  assert.deepEqual((l.result as { rules: unknown[] }).rules, [{ source: '198.18.2.0/24', addr: SNAT, ifname: 'lan0', conns: 1, available: 64510 }]);
  // A source no rule covers is still not routed by the director.
  const before = d.counters.drops[Drop.NOT_LOCAL]!;
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: PEER, dst: '198.18.2.99' }).udp({ sport: 1, dport: 2 }));
  d.runOnce(3);
  assert.equal(out(nat).length, 0);
  assert.equal(d.counters.drops[Drop.NOT_LOCAL]! - before, 1);
  // A stray ACK from the real server opens nothing.
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: RS, dst: PEER }).tcp({ sport: 33001, dport: 9090, flags: 0x10 }));
  d.runOnce(4);
  assert.equal(out(lan).length, 0);
  // UDP works the same way.
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: RS, dst: PEER }).udp({ sport: 5000, dport: 53 }).payload([1]));
  d.runOnce(5);
  const [u] = out(lan);
  assert.equal(u!.p.saddr, ip(SNAT));
  assert.equal(u!.p.sport, LPORT_MIN + 1);
  assert.equal(u!.v, Verdict.OK);
});
