// Golden forwarding through a whole Dataplane over memory ports: NAT in/out, DR, TUN, ICMP errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { Drop } from '../../src/dp/drops.ts';
import { PacketBuilder, ip, mac, refSum } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, Verdict, PARSE } from '../../src/packet/parse.ts';
import { readU32 } from '../../src/packet/checksum.ts';

const LAN_MAC = '02:00:00:00:01:01';
const NAT_MAC = '02:00:00:00:01:02';
const ROUTER_MAC = '02:00:00:00:0a:01';
const RS_MAC = '02:00:00:00:0b:01';

function setup(method: 'nat' | 'dr' | 'tun', extra: Record<string, unknown> = {}) {
  const lan = new MemoryPort('lan0', { mac: mac(LAN_MAC), maxFrame: 4096 });
  const nat = new MemoryPort('nat0', { mac: mac(NAT_MAC), maxFrame: 4096 });
  const rip = method === 'nat' ? '198.18.2.11' : method === 'dr' ? '198.18.1.11' : '198.19.0.11';
  const config = validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: ['198.18.1.100/32@lan0', '198.18.1.2/24@lan0', '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    services: [
      { protocol: 'tcp', address: '198.18.1.100', port: 80, scheduler: 'rr', realservers: [{ address: rip, port: method === 'nat' ? 8080 : 80, method }] },
      { protocol: 'udp', address: '198.18.1.100', port: 53, scheduler: 'rr', realservers: [{ address: rip, port: 53, method }] },
    ],
    ...extra,
  });
  const logs: string[] = [];
  const dp = new Dataplane([lan, nat], config, (_l, m) => logs.push(m));
  const d = dp.director;
  // Neighbours as if ARP had resolved them.
  d.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  d.neigh.learn(ip(rip), method === 'nat' ? 1 : 0, mac(RS_MAC), 0, 0, true);
  lan.drain();
  nat.drain();
  return { lan, nat, dp, d, rip, logs };
}

function send(port: MemoryPort, b: PacketBuilder) {
  const f = b.build();
  port.inject(f.buf.subarray(f.off, f.off + f.len));
}

function out(port: MemoryPort) {
  return port.drain().map((f) => {
    const p = new ParsedFrame();
    const v = parseFrame(f, 0, f.length, p, PARSE.VERIFY_L4);
    return { f, p, v };
  });
}

const macAt = (f: Uint8Array, at: number) => [...f.subarray(at, at + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');

test('NAT: VIP:80 → RIP:8080 in, RIP:8080 → VIP:80 out, checksums complete and right', () => {
  const { lan, nat, d, dp } = setup('nat');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 63 }).tcp({ sport: 40000, dport: 80, flags: 0x02, seq: 1 }));
  d.runOnce(1);
  const fw = out(nat);
  assert.equal(fw.length, 1);
  const a = fw[0]!;
  assert.equal(a.v, Verdict.OK);
  assert.equal(a.p.daddr, ip('198.18.2.11'));
  assert.equal(a.p.dport, 8080);
  assert.equal(a.p.saddr, ip('198.18.0.2'));
  assert.equal(a.p.ttl, 63); // INPUT path: no TTL change
  assert.equal(macAt(a.f, 10), RS_MAC);
  assert.equal(macAt(a.f, 16), NAT_MAC);
  // Reply from the real server.
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2', ttl: 64 }).tcp({ sport: 8080, dport: 40000, flags: 0x12, seq: 9, ack: 2 }));
  d.runOnce(2);
  const back = out(lan);
  assert.equal(back.length, 1);
  const b = back[0]!;
  assert.equal(b.v, Verdict.OK); // VERIFY_L4 checked the rewritten TCP checksum
  assert.equal(b.p.saddr, ip('198.18.1.100'));
  assert.equal(b.p.sport, 80);
  assert.equal(b.p.ttl, 63); // FORWARD path decrements
  assert.equal(macAt(b.f, 10), ROUTER_MAC);
  const conns = dp.ipvs.listConns();
  assert.equal(conns.length, 1);
  assert.equal(conns[0]!.state, 'SYN_RECV');
});

test('NAT: partial checksums (NEEDS_CSUM) are adjusted with the partial rule', () => {
  const { lan, nat, d } = setup('nat');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 5000, dport: 53 }).payload([1, 2, 3]).partialChecksum());
  d.runOnce(1);
  const [a] = out(nat);
  assert.ok(a);
  assert.equal(a.f[0]! & 1, 1, 'NEEDS_CSUM kept');
  // The field must hold the pseudo-header sum of the new addresses; finishing it like the kernel
  // (sum from csum_start, fold, complement) must then give a segment that verifies.
  const l4 = a.p.l4;
  const seed = (a.f[l4 + 6]! << 8) | a.f[l4 + 7]!;
  const pseudo = refSum([...a.f.subarray(a.p.l3 + 12, a.p.l3 + 20), 0, 17, 0, a.p.ipEnd - l4]);
  assert.equal(seed, pseudo, 'field holds the pseudo-header seed of the new addresses');
  const done = a.f.slice();
  const c = ~refSum(done, l4, a.p.ipEnd) & 0xffff;
  done[l4 + 6] = c >> 8;
  done[l4 + 7] = c & 0xff;
  assert.equal(refSum([...done.subarray(a.p.l3 + 12, a.p.l3 + 20), 0, 17, 0, a.p.ipEnd - l4, ...done.subarray(l4, a.p.ipEnd)]), 0xffff, 'finished checksum verifies');
});

test('DR: only the MACs change', () => {
  const { lan, d } = setup('dr');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 60 }).tcp({ sport: 40001, dport: 80, flags: 0x02 }).payload([7, 7]));
  d.runOnce(1);
  const [a] = out(lan);
  assert.ok(a);
  assert.equal(a.v, Verdict.OK);
  assert.equal(a.p.daddr, ip('198.18.1.100'));
  assert.equal(a.p.saddr, ip('198.18.0.2'));
  assert.equal(a.p.dport, 80);
  assert.equal(a.p.ttl, 60);
  assert.equal(macAt(a.f, 10), RS_MAC);
  assert.equal(macAt(a.f, 16), LAN_MAC);
});

test('TUN: IPIP DIP → RIP through the gateway; too big with DF → fragmentation-needed (MTU − 20)', () => {
  const { lan, d } = setup('tun');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 5000, dport: 53 }).payload([1, 2, 3, 4]));
  d.runOnce(1);
  const [a] = out(lan);
  assert.ok(a);
  assert.equal(a.v, Verdict.OK);
  assert.equal(a.p.proto, 4);
  assert.equal(a.p.saddr, ip('198.18.1.2'));
  assert.equal(a.p.daddr, ip('198.19.0.11'));
  assert.equal(macAt(a.f, 10), ROUTER_MAC);
  const inner = a.p.l4;
  assert.equal(readU32(a.f, inner + 12), ip('198.18.0.2'));
  assert.equal(readU32(a.f, inner + 16), ip('198.18.1.100'));
  // 1500-byte datagram with DF: 1520 bytes would exceed the 1500 MTU.
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', df: true }).udp({ sport: 5000, dport: 53 }).payload(new Array(1472).fill(9)));
  d.runOnce(2);
  const [e] = out(lan);
  assert.ok(e);
  assert.equal(e.p.proto, 1);
  assert.equal(e.p.icmpType, 3);
  assert.equal(e.p.icmpCode, 4);
  assert.equal((e.f[e.p.l4 + 6]! << 8) | e.f[e.p.l4 + 7]!, 1480);
  assert.equal(e.p.daddr, ip('198.18.0.2'));
  assert.equal(d.counters.drops[Drop.TOO_BIG], 1);
});

test('NAT: an ICMP error about a reply is sent on to the real server, embedded header translated', () => {
  const { lan, nat, d } = setup('nat');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  out(nat);
  // The router says the client is unreachable, quoting the reply VIP:80 → CIP:40000.
  const quoted = new PacketBuilder().eth({}).ipv4({ src: '198.18.1.100', dst: '198.18.0.2' }).tcp({ sport: 80, dport: 40000, flags: 0x12 }).build();
  const q = [...quoted.buf.subarray(quoted.off + 10 + 14, quoted.off + quoted.len)].slice(0, 28);
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.1.1', dst: '198.18.1.100' }).icmp({ type: 3, code: 1 }).payload(q));
  d.runOnce(2);
  const [e] = out(nat);
  assert.ok(e, 'ICMP forwarded to the real server');
  assert.equal(e.p.daddr, ip('198.18.2.11'));
  const il3 = e.p.l4 + 8;
  assert.equal(readU32(e.f, il3 + 12), ip('198.18.2.11'), 'embedded source VIP → RIP');
  assert.equal((e.f[il3 + 20]! << 8) | e.f[il3 + 21]!, 8080, 'embedded source port 80 → 8080');
  assert.equal(refSum(e.f, e.p.l4, e.p.ipEnd), 0xffff, 'ICMP checksum right');
  assert.equal(refSum(e.f, il3, il3 + 20), 0xffff, 'embedded IP header checksum right');
});

test('NAT: an ICMP error from a real server reaches the client quoting VIP:vport', () => {
  const { lan, nat, d } = setup('nat');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  out(nat);
  // The real server needs a smaller MTU, quoting what it received: CIP:40000 → RIP:8080.
  const quoted = new PacketBuilder().eth({}).ipv4({ src: '198.18.0.2', dst: '198.18.2.11' }).tcp({ sport: 40000, dport: 8080, flags: 0x10 }).build();
  const q = [...quoted.buf.subarray(quoted.off + 10 + 14, quoted.off + quoted.len)].slice(0, 28);
  send(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2' }).icmp({ type: 3, code: 4, rest: 1400 }).payload(q));
  d.runOnce(2);
  const [e] = out(lan);
  assert.ok(e, 'ICMP forwarded to the client');
  assert.equal(e.p.saddr, ip('198.18.1.100'), 'outer source RIP → VIP');
  assert.equal(e.p.daddr, ip('198.18.0.2'));
  const il3 = e.p.l4 + 8;
  assert.equal(readU32(e.f, il3 + 16), ip('198.18.1.100'), 'embedded destination RIP → VIP');
  assert.equal((e.f[il3 + 22]! << 8) | e.f[il3 + 23]!, 80, 'embedded destination port 8080 → 80');
  assert.equal(refSum(e.f, e.p.l4, e.p.ipEnd), 0xffff, 'ICMP checksum right');
  assert.equal(refSum(e.f, e.p.l3, e.p.l3 + 20), 0xffff, 'outer IP checksum right');
  assert.equal(refSum(e.f, il3, il3 + 20), 0xffff, 'embedded IP header checksum right');
});

test('VLAN-tagged frames are dropped and counted, never misrouted', () => {
  const { lan, nat, d } = setup('nat');
  send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC, vlan: 10 }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 }));
  d.runOnce(1);
  assert.equal(out(nat).length + out(lan).length, 0);
  assert.equal(d.counters.drops[Drop.VLAN], 1);
});

test('ICMP errors are rate-limited: a flood is not reflected one for one', () => {
  const { lan, d, dp } = setup('nat');
  dp.handle({ v: 1, id: 1, op: 'edit-server', service: { type: 'udp', addr: '198.18.1.100', port: 53 }, dest: { addr: '198.18.2.11', port: 53, fwd: 'masq', weight: 0, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' } });
  let sent = 0;
  for (let burst = 0; burst < 4; burst++) {
    for (let i = 0; i < 50; i++) send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 6000 + burst * 50 + i, dport: 53 }).payload([1]));
    d.runOnce(10 + burst); // 200 datagrams within a few ms
    sent += out(lan).length;
  }
  assert.equal(d.counters.drops[Drop.NO_DEST], 200);
  assert.ok(sent >= 50 && sent <= 55, `about one burst of errors (50), got ${sent}`);
  assert.equal(d.counters.icmpRateLimited[0], 200 - sent);
});

test('no destination: port unreachable back to the client and one rate-limited log line', () => {
  const { lan, d, dp, logs } = setup('nat');
  dp.handle({ v: 1, id: 1, op: 'edit-server', service: { type: 'udp', addr: '198.18.1.100', port: 53 }, dest: { addr: '198.18.2.11', port: 53, fwd: 'masq', weight: 0, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' } });
  for (let i = 0; i < 3; i++) send(lan, new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 5000 + i, dport: 53 }).payload([1]));
  d.runOnce(1);
  const o = out(lan);
  assert.equal(o.length, 3);
  for (const e of o) assert.equal(e.p.icmpType, 3);
  assert.equal(d.counters.drops[Drop.NO_DEST], 3);
  assert.deepEqual(logs.filter((l) => l.includes('no destination available')), ['rr: UDP 198.18.1.100:53 - no destination available']);
});

test('control: a refused change changes nothing; addresses can be added at run time with gratuitous ARP', () => {
  const { lan, dp } = setup('nat');
  const before = JSON.stringify(dp.handle({ v: 1, id: 1, op: 'list' }));
  const r = dp.handle({ v: 1, id: 2, op: 'add-service', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, config: { scheduler: 'rr', persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '' } });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.message, 'Service already exists');
  assert.equal(JSON.stringify(dp.handle({ v: 1, id: 1, op: 'list' })), before);
  const a = dp.handle({ v: 1, id: 3, op: 'address-add', address: { addr: '198.18.1.101', plen: 32, ifname: 'lan0' } });
  assert.equal(a.ok, true);
  const garp = out(lan);
  assert.equal(garp.length, 1);
  assert.equal(garp[0]!.v, Verdict.ARP);
  assert.equal(readU32(garp[0]!.f, garp[0]!.p.l3 + 24), ip('198.18.1.101'));
  const dup = dp.handle({ v: 1, id: 4, op: 'address-add', address: { addr: '198.18.1.101', plen: 32, ifname: 'lan0' } });
  assert.equal(dup.ok, false);
});

test('TUN: a 64-segment GSO frame leaves as 64 IPIP packets even when a neighbour re-probe wants a scratch slot', () => {
  const lan = new MemoryPort('lan0', { mac: mac(LAN_MAC), maxFrame: 70_000, capacity: 512 });
  const nat = new MemoryPort('nat0', { mac: mac(NAT_MAC), maxFrame: 70_000 });
  const config = validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: ['198.18.1.100/32@lan0', '198.18.1.2/24@lan0', '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    services: [{ protocol: 'tcp', address: '198.18.1.100', port: 80, scheduler: 'rr', realservers: [{ address: '198.19.0.11', method: 'tun' }] }],
  });
  const dp = new Dataplane([lan, nat], config, () => {});
  const d = dp.director;
  d.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  lan.drain();
  const payload = Array.from({ length: 64 * 1000 }, (_, i) => i & 0xff);
  send(
    lan,
    new PacketBuilder()
      .vnet({ gsoType: 1, gsoSize: 1000, hdrLen: 54 })
      .eth({ dst: LAN_MAC, src: ROUTER_MAC })
      .ipv4({ src: '198.18.0.2', dst: '198.18.1.100', df: true })
      .tcp({ sport: 40000, dport: 80, flags: 0x02 })
      .payload(payload)
      .partialChecksum(),
  );
  // 40 s later the gateway entry is stale: using it sends a re-probe, which finds no free scratch slot.
  d.runOnce(40_000);
  const frames = out(lan);
  const ipip = frames.filter((f) => f.v === Verdict.OK && f.p.proto === 4);
  assert.equal(ipip.length, 64, 'every segment went out');
  assert.equal(frames.length, 64, 'no garbage frame');
  let got = 0;
  for (const f of ipip) {
    const inner = f.p.l4;
    assert.equal(refSum(f.f, inner, inner + 20), 0xffff, 'inner IP header checksum');
    got += ((f.f[inner + 2]! << 8) | f.f[inner + 3]!) - 40;
  }
  assert.equal(got, 64_000, 'all payload bytes');
  assert.equal(d.counters.drops[Drop.TX_FULL], 1, 'the probe was dropped and counted instead');
});
