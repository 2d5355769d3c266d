// Golden FullNAT frames through a whole Dataplane over memory ports: both ends rewritten, partial checksums, ICMP both ways, port exhaustion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Drop } from '../../src/dp/drops.ts';
import { R } from '../../src/ipvs/core.ts';
import { LPORT_MAX, LPORT_MIN } from '../../src/ipvs/laddr.ts';
import { PacketBuilder, ip, refSum } from '../packet/builder.ts';
import { Verdict } from '../../src/packet/parse.ts';
import { readU32 } from '../../src/packet/checksum.ts';
import { CIP, LAN_MAC, LIP, LIP2, NAT_MAC, RIP, ROUTER_MAC, RS_ROUTER_MAC, VIP, fullnatRig, out, send } from './fullnat-rig.ts';

const setup = (laddrs?: { address: string; interface?: string }[]) => fullnatRig({ laddrs, udp: true });

const macAt = (f: Uint8Array, at: number) => [...f.subarray(at, at + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
const u16 = (f: Uint8Array, at: number) => (f[at]! << 8) | f[at + 1]!;

test('FullNAT TCP: CIP:cport → VIP:80 leaves as LIP:lport → RIP:8080 via the router; the reply to LIP returns as VIP:80 → CIP:cport', () => {
  const { lan, nat, dp, d } = setup();
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP, ttl: 63 }).tcp({ sport: 40000, dport: 80, flags: 0x02, seq: 1 }));
  d.runOnce(1);
  const [a, extra] = out(nat);
  assert.ok(a);
  assert.equal(extra, undefined);
  assert.equal(a.v, Verdict.OK, 'IP and TCP checksums verify');
  assert.equal(a.p.saddr, ip(LIP));
  assert.equal(a.p.sport, LPORT_MIN, 'first port of the pool');
  assert.equal(a.p.daddr, ip(RIP));
  assert.equal(a.p.dport, 8080);
  assert.equal(macAt(a.f, 10), RS_ROUTER_MAC, 'next hop is the router toward the real servers');
  const ct = dp.ipvs.conns;
  const c = ct.lookupIn(6, ip(CIP), 40000, ip(VIP), 80);
  assert.ok(c >= 0);
  assert.equal(ct.laddr[c], ip(LIP));
  assert.equal(ct.lport[c], LPORT_MIN);
  assert.equal(ct.lookupOut(6, ip(RIP), 8080, ip(LIP), LPORT_MIN), c, 'keyed on the real-server side LIP:lport ↔ RIP:rport');

  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: RIP, dst: LIP, ttl: 63 }).tcp({ sport: 8080, dport: LPORT_MIN, flags: 0x12, seq: 9, ack: 2 }).payload([1, 2, 3]));
  d.runOnce(2);
  const [b] = out(lan);
  assert.ok(b, 'reply to the LIP goes back to the client');
  assert.equal(b.v, Verdict.OK);
  assert.equal(b.p.saddr, ip(VIP));
  assert.equal(b.p.sport, 80);
  assert.equal(b.p.daddr, ip(CIP));
  assert.equal(b.p.dport, 40000);
  assert.equal(macAt(b.f, 10), ROUTER_MAC);
  const [conn] = dp.ipvs.listConns();
  assert.equal(conn!.state, 'SYN_RECV');
  const list = dp.handle({ v: 1, id: 1, op: 'list' });
  assert.ok(list.ok);
  const dest = (list.result as { services: { dests: { fwd: string; stats: { inpkts: number; outpkts: number } }[] }[] }).services[0]!.dests[0]!;
  assert.equal(dest.fwd, 'fullnat');
  assert.equal(dest.stats.inpkts, 1);
  assert.equal(dest.stats.outpkts, 1);
});

test('FullNAT UDP with a partial checksum: addresses fixed in the seed, ports left to the final pass', () => {
  const { lan, nat, d } = setup();
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).udp({ sport: 5000, dport: 53 }).payload([1, 2, 3]).partialChecksum());
  d.runOnce(1);
  const [a] = out(nat);
  assert.ok(a);
  assert.equal(a.f[0]! & 1, 1, 'NEEDS_CSUM kept');
  assert.equal(a.p.saddr, ip(LIP));
  assert.equal(a.p.daddr, ip(RIP));
  assert.equal(a.p.dport, 5353);
  const l4 = a.p.l4;
  const seed = u16(a.f, l4 + 6);
  const pseudo = refSum([...a.f.subarray(a.p.l3 + 12, a.p.l3 + 20), 0, 17, 0, a.p.ipEnd - l4]);
  assert.equal(seed, pseudo, 'the field holds the pseudo-header seed of LIP → RIP');
  const done = a.f.slice();
  const cs = ~refSum(done, l4, a.p.ipEnd) & 0xffff;
  done[l4 + 6] = cs >> 8;
  done[l4 + 7] = cs & 0xff;
  assert.equal(refSum([...done.subarray(a.p.l3 + 12, a.p.l3 + 20), 0, 17, 0, a.p.ipEnd - l4, ...done.subarray(l4, a.p.ipEnd)]), 0xffff, 'finished checksum verifies');
  // The reply, with a complete checksum, back to the client.
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: RIP, dst: LIP }).udp({ sport: 5353, dport: a.p.sport }).payload([4, 5]));
  d.runOnce(2);
  const [b] = out(lan);
  assert.ok(b);
  assert.equal(b.v, Verdict.OK);
  assert.equal(b.p.saddr, ip(VIP));
  assert.equal(b.p.sport, 53);
  assert.equal(b.p.daddr, ip(CIP));
  assert.equal(b.p.dport, 5000);
});

test('FullNAT: LIPs are used round robin, each with its own ports; a packet to a LIP with no conn is not forwarded', () => {
  const { lan, nat, d } = setup([{ address: LIP, interface: 'nat0' }, { address: LIP2 }]);
  for (let i = 0; i < 4; i++) send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).tcp({ sport: 41000 + i, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  const got = out(nat).map((x) => `${x.p.saddr === ip(LIP) ? 'L1' : x.p.saddr === ip(LIP2) ? 'L2' : '?'}:${x.p.sport}`);
  assert.deepEqual(got, [`L1:${LPORT_MIN}`, `L2:${LPORT_MIN}`, `L1:${LPORT_MIN + 1}`, `L2:${LPORT_MIN + 1}`]);
  assert.ok(d.isLocal(ip(LIP2)), 'a LIP without -F lives on the interface its route uses');
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: RIP, dst: LIP }).tcp({ sport: 8080, dport: 9999, flags: 0x10 }));
  d.runOnce(2);
  assert.equal(out(lan).length, 0);
});

test('FullNAT: ICMP errors are translated both ways', () => {
  const { lan, nat, d } = setup();
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  const lport = out(nat)[0]!.p.sport;
  // A router on the real-server side quotes LIP:lport → RIP:8080 (frag needed) to the LIP.
  const q1b = new PacketBuilder().eth({}).ipv4({ src: LIP, dst: RIP }).tcp({ sport: lport, dport: 8080, flags: 0x10 }).build();
  const q1 = [...q1b.buf.subarray(q1b.off + 10 + 14, q1b.off + q1b.len)].slice(0, 28);
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: '198.18.2.254', dst: LIP }).icmp({ type: 3, code: 4, rest: 1400 }).payload(q1));
  d.runOnce(2);
  const [e] = out(lan);
  assert.ok(e, 'ICMP to the client');
  assert.equal(e.p.saddr, ip(VIP));
  assert.equal(e.p.daddr, ip(CIP));
  let il3 = e.p.l4 + 8;
  assert.equal(readU32(e.f, il3 + 12), ip(CIP), 'embedded source LIP → CIP');
  assert.equal(readU32(e.f, il3 + 16), ip(VIP), 'embedded destination RIP → VIP');
  assert.equal(u16(e.f, il3 + 20), 40000);
  assert.equal(u16(e.f, il3 + 22), 80);
  assert.equal(refSum(e.f, e.p.l4, e.p.ipEnd), 0xffff, 'ICMP checksum right');
  assert.equal(refSum(e.f, e.p.l3, e.p.l3 + 20), 0xffff, 'outer IP checksum right');
  assert.equal(refSum(e.f, il3, il3 + 20), 0xffff, 'embedded IP checksum right');
  // The client side's router quotes a reply VIP:80 → CIP:40000 to the VIP.
  const q2b = new PacketBuilder().eth({}).ipv4({ src: VIP, dst: CIP }).tcp({ sport: 80, dport: 40000, flags: 0x12 }).build();
  const q2 = [...q2b.buf.subarray(q2b.off + 10 + 14, q2b.off + q2b.len)].slice(0, 28);
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.1.1', dst: VIP }).icmp({ type: 3, code: 1 }).payload(q2));
  d.runOnce(3);
  const [f] = out(nat);
  assert.ok(f, 'ICMP to the real server');
  assert.equal(f.p.saddr, ip(LIP));
  assert.equal(f.p.daddr, ip(RIP));
  il3 = f.p.l4 + 8;
  assert.equal(readU32(f.f, il3 + 12), ip(RIP), 'embedded source VIP → RIP');
  assert.equal(readU32(f.f, il3 + 16), ip(LIP), 'embedded destination CIP → LIP');
  assert.equal(u16(f.f, il3 + 20), 8080);
  assert.equal(u16(f.f, il3 + 22), lport);
  assert.equal(refSum(f.f, f.p.l4, f.p.ipEnd), 0xffff);
  assert.equal(refSum(f.f, f.p.l3, f.p.l3 + 20), 0xffff);
  assert.equal(macAt(f.f, 10), RS_ROUTER_MAC);
});

test('FullNAT: port exhaustion refuses new conns cleanly (counted), and an expired conn gives its port back', () => {
  const { lan, nat, dp, d } = setup();
  const n = LPORT_MAX - LPORT_MIN + 1;
  // Fill the whole pool of the single LIP: one UDP conn per client port, in bursts.
  let sent = 0;
  let t = 1;
  const cip = ip(CIP);
  while (sent < n) {
    for (let k = 0; k < 256 && sent < n; k++, sent++) {
      const a = cip + Math.floor(sent / 60000);
      const src = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src, dst: VIP }).udp({ sport: 1024 + (sent % 60000), dport: 53 }).payload([0]));
    }
    while (d.runOnce(t) > 0) nat.drain();
    t++;
  }
  const lip = dp.ipvs.laddrs.get(ip(LIP))!;
  assert.equal(lip.available, 0);
  assert.equal(lip.conns, n);
  const before = d.counters.drops[Drop.NO_LPORT]!;
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.200', dst: VIP }).udp({ sport: 7, dport: 53 }).payload([0]));
  d.runOnce(t++);
  assert.equal(out(nat).length, 0, 'refused');
  assert.equal(d.counters.drops[Drop.NO_LPORT]! - before, 1);
  assert.equal(dp.ipvs.reasons[R.NO_LPORT], 1);
  assert.equal(dp.ipvs.laddrs.exhausted, 1);
  assert.equal(lip.conflicts, 1);
  assert.equal(dp.ipvs.conns.count, n, 'the refused conn left no slot behind');
  const listed = dp.handle({ v: 1, id: 2, op: 'laddr-list' });
  assert.ok(listed.ok);
  assert.deepEqual((listed.result as { services: { laddrs: unknown[] }[] }).services[1]!.laddrs, [{ addr: LIP, ifname: 'nat0', conns: n, conflicts: 1, available: 0 }]);
  // One conn expires (UDP timeout 300 s): its port is free again and the next new conn gets it.
  const c0 = dp.ipvs.conns.lookupIn(17, cip, 1024, ip(VIP), 53);
  const freed = dp.ipvs.conns.lport[c0]!;
  dp.ipvs.delConn(c0);
  assert.equal(lip.available, 1);
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.200', dst: VIP }).udp({ sport: 7, dport: 53 }).payload([0]));
  d.runOnce(t++);
  const [a] = out(nat);
  assert.ok(a);
  assert.equal(a.p.sport, freed);
});

test('FullNAT control: a LIP is owned by the director while listed or in use; del-laddr keeps it for live conns', () => {
  const { lan, nat, dp, d } = setup();
  const key = { type: 'tcp' as const, addr: VIP, port: 80 };
  assert.ok(d.isLocal(ip(LIP)));
  const dup = dp.handle({ v: 1, id: 1, op: 'laddr-add', service: key, laddr: { addr: LIP, ifname: 'nat0' } });
  assert.ok(!dup.ok && dup.error.code === 'EEXIST');
  const bad = dp.handle({ v: 1, id: 2, op: 'laddr-add', service: key, laddr: { addr: '198.18.2.60', ifname: 'eth9' } });
  assert.ok(!bad.ok && bad.error.code === 'ENODEV');
  assert.ok(!d.isLocal(ip('198.18.2.60')), 'a refused add changes nothing');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  nat.drain();
  // Both services list the LIP; remove it from both: a TCP conn still holds a port.
  assert.ok(dp.handle({ v: 1, id: 3, op: 'laddr-del', service: key, laddr: { addr: LIP, ifname: '' } }).ok);
  assert.ok(dp.handle({ v: 1, id: 4, op: 'laddr-del', service: { type: 'udp', addr: VIP, port: 53 }, laddr: { addr: LIP, ifname: '' } }).ok);
  assert.ok(d.isLocal(ip(LIP)), 'kept while a conn uses it');
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: RIP, dst: LIP }).tcp({ sport: 8080, dport: LPORT_MIN, flags: 0x12 }));
  d.runOnce(2);
  assert.equal(out(lan).length, 1, 'its replies still reach the client');
  // A new conn now has no LIP: refused and counted.
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).tcp({ sport: 40001, dport: 80, flags: 0x02 }));
  d.runOnce(3);
  assert.equal(out(nat).length, 0);
  assert.equal(dp.ipvs.reasons[R.NO_LPORT], 1);
  dp.ipvs.delConn(dp.ipvs.conns.lookupIn(6, ip(CIP), 40000, ip(VIP), 80));
  assert.ok(!d.isLocal(ip(LIP)), 'released with its last conn');
  assert.equal(dp.ipvs.laddrs.size, 0);
});
