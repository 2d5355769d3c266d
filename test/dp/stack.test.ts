// The director's own stack over memory ports: ARP replies, gratuitous ARP, ICMP echo, neighbour resolution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Director } from '../../src/dp/director.ts';
import { Drop } from '../../src/dp/drops.ts';
import { PacketBuilder, ip, mac, refSum } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, Verdict } from '../../src/packet/parse.ts';
import { readU32 } from '../../src/packet/checksum.ts';
import { icmpChecksum } from '../../src/packet/checksum.ts';

const DS_MAC = '02:00:00:00:01:01';
const CL_MAC = '02:00:00:00:0c:01';

function setup() {
  const port = new MemoryPort('lan0', { mac: mac(DS_MAC), maxFrame: 2048 });
  const d = new Director([port]);
  d.addAddress(ip('198.18.1.2'), 24, 0);
  d.addAddress(ip('198.18.1.100'), 32, 0);
  return { port, d };
}

function frames(port: MemoryPort) {
  return port.drain().map((f) => {
    const p = new ParsedFrame();
    const v = parseFrame(f, 0, f.length, p, 0);
    return { f, p, v };
  });
}

test('stack: gratuitous ARP for each address at start, ARP reply for the VIP, none for others', () => {
  const { port, d } = setup();
  const garp = frames(port);
  assert.equal(garp.length, 2);
  for (const g of garp) {
    assert.equal(g.v, Verdict.ARP);
    assert.deepEqual([...g.f.subarray(10, 16)], [255, 255, 255, 255, 255, 255]);
    assert.equal(readU32(g.f, g.p.l3 + 14), readU32(g.f, g.p.l3 + 24)); // spa == tpa: gratuitous
  }
  const req = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff', src: CL_MAC }).arp({ op: 1, sha: CL_MAC, spa: '198.18.1.1', tpa: '198.18.1.100' }).build();
  port.inject(req.buf.subarray(req.off, req.off + req.len));
  const other = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff', src: CL_MAC }).arp({ op: 1, sha: CL_MAC, spa: '198.18.1.1', tpa: '198.18.1.77' }).build();
  port.inject(other.buf.subarray(other.off, other.off + other.len));
  d.runOnce(0);
  const out = frames(port);
  assert.equal(out.length, 1);
  const r = out[0]!;
  assert.equal(r.v, Verdict.ARP);
  assert.equal(r.f[r.p.l3 + 7], 2); // reply
  assert.deepEqual([...r.f.subarray(r.p.l3 + 8, r.p.l3 + 14)], [...mac(DS_MAC)]);
  assert.equal(readU32(r.f, r.p.l3 + 14), ip('198.18.1.100'));
  assert.deepEqual([...r.f.subarray(10, 16)], [...mac(CL_MAC)]);
  assert.equal(d.counters.arpReplies[0], 1);
});

test('stack: ICMP echo to the VIP is answered (learned neighbour from the ARP exchange)', () => {
  const { port, d } = setup();
  port.drain();
  const req = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff', src: CL_MAC }).arp({ op: 1, sha: CL_MAC, spa: '198.18.1.1', tpa: '198.18.1.100' }).build();
  port.inject(req.buf.subarray(req.off, req.off + req.len));
  const echo = new PacketBuilder()
    .eth({ dst: DS_MAC, src: CL_MAC })
    .ipv4({ src: '198.18.1.1', dst: '198.18.1.100', ttl: 63 })
    .icmp({ type: 8, rest: (7 << 16) | 1 })
    .payload([1, 2, 3, 4, 5])
    .build();
  port.inject(echo.buf.subarray(echo.off, echo.off + echo.len));
  d.runOnce(0);
  const out = frames(port);
  assert.equal(out.length, 2);
  const r = out[1]!;
  assert.equal(r.v, Verdict.OK);
  assert.equal(r.p.icmpType, 0);
  assert.equal(r.p.saddr, ip('198.18.1.100'));
  assert.equal(r.p.daddr, ip('198.18.1.1'));
  assert.deepEqual([...r.f.subarray(10, 16)], [...mac(CL_MAC)]);
  assert.equal(icmpChecksum(r.f, r.p.l4, r.p.ipEnd), (r.f[r.p.l4 + 2]! << 8) | r.f[r.p.l4 + 3]!);
  assert.equal(refSum(r.f, r.p.l4, r.p.ipEnd), 0xffff);
  assert.equal(d.counters.icmpEchoReplies[0], 1);
});

test('stack: an unknown neighbour is resolved by ARP first, then the queued reply goes out', () => {
  const { port, d } = setup();
  port.drain();
  const echo = new PacketBuilder()
    .eth({ dst: DS_MAC, src: CL_MAC })
    .ipv4({ src: '198.18.1.9', dst: '198.18.1.2' })
    .icmp({ type: 8, rest: 1 })
    .build();
  port.inject(echo.buf.subarray(echo.off, echo.off + echo.len));
  d.runOnce(0);
  let out = frames(port);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.v, Verdict.ARP);
  assert.equal(out[0]!.f[out[0]!.p.l3 + 7], 1); // request
  assert.equal(readU32(out[0]!.f, out[0]!.p.l3 + 24), ip('198.18.1.9'));
  assert.equal(readU32(out[0]!.f, out[0]!.p.l3 + 14), ip('198.18.1.2')); // from our LAN address, not the VIP
  const reply = new PacketBuilder().eth({ dst: DS_MAC, src: CL_MAC }).arp({ op: 2, sha: CL_MAC, spa: '198.18.1.9', tha: DS_MAC, tpa: '198.18.1.2' }).build();
  port.inject(reply.buf.subarray(reply.off, reply.off + reply.len));
  d.runOnce(10);
  out = frames(port);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.p.icmpType, 0);
  assert.equal(out[0]!.p.daddr, ip('198.18.1.9'));
});

test('stack: malformed, IPv6, foreign-MAC and not-local frames are dropped and counted', () => {
  const { port, d } = setup();
  port.drain();
  const bad = new PacketBuilder().eth({ dst: DS_MAC, src: CL_MAC }).ipv4({ src: '198.18.1.9', dst: '198.18.1.2', badChecksum: true }).udp({}).build();
  const v6 = new PacketBuilder().eth({ dst: DS_MAC, src: CL_MAC }).ipv6().build();
  const foreign = new PacketBuilder().eth({ dst: '02:00:00:00:99:99', src: CL_MAC }).ipv4({ src: '198.18.1.9', dst: '198.18.1.2' }).udp({}).build();
  const notLocal = new PacketBuilder().eth({ dst: DS_MAC, src: CL_MAC }).ipv4({ src: '198.18.1.9', dst: '198.18.1.3' }).udp({}).build();
  for (const b of [bad, v6, foreign, notLocal]) port.inject(b.buf.subarray(b.off, b.off + b.len));
  d.runOnce(0);
  assert.equal(port.drain().length, 0);
  assert.equal(d.counters.drops[Drop.MALFORMED], 1);
  assert.equal(d.counters.drops[Drop.IPV6], 1);
  assert.equal(d.counters.drops[Drop.OTHER_HOST], 1);
  assert.equal(d.counters.drops[Drop.NOT_LOCAL], 1);
});

test('stack: local protocols get multicast for their group and unicast to own addresses; others are dropped and counted', () => {
  const { port, d } = setup();
  port.drain();
  const got: Array<{ port: number; daddr: number; first: number }> = [];
  const vrrp = { proto: 112, udpPort: 0, port: 0, groups: [ip('224.0.0.18')], deliver: (pt: number, b: Uint8Array, p: ParsedFrame) => got.push({ port: pt, daddr: p.daddr, first: b[p.l4]! }) };
  d.addLocalProtocol(vrrp);
  const inject = (dstMac: string, dst: string, proto: number, first: number) => {
    const f = new PacketBuilder().eth({ dst: dstMac, src: CL_MAC }).ipv4({ src: '198.18.1.3', dst, ttl: 255, proto }).payload([first, 1, 2, 3]).build();
    port.inject(f.buf.subarray(f.off, f.off + f.len));
  };
  inject('01:00:5e:00:00:12', '224.0.0.18', 112, 0x31); // joined group
  inject('01:00:5e:00:00:51', '224.0.0.81', 112, 0x32); // group not joined
  inject(DS_MAC, '198.18.1.2', 112, 0x33); // unicast to an own address
  inject('01:00:5e:00:00:12', '224.0.0.18', 103, 0x34); // right group, other protocol
  d.runOnce(0);
  assert.deepEqual(got, [
    { port: 0, daddr: ip('224.0.0.18'), first: 0x31 },
    { port: 0, daddr: ip('198.18.1.2'), first: 0x33 },
  ]);
  assert.equal(d.counters.localDelivered[0], 2);
  assert.equal(d.counters.drops[Drop.MULTICAST], 2);
  d.removeLocalProtocol(vrrp);
  inject('01:00:5e:00:00:12', '224.0.0.18', 112, 0x35);
  d.runOnce(1);
  assert.equal(got.length, 2);
  assert.equal(d.counters.drops[Drop.MULTICAST], 3);
});

test('stack: sendDatagram to a multicast group uses the group MAC, TTL and a valid IPv4 header', () => {
  const { port, d } = setup();
  port.drain();
  assert.equal(d.sendDatagram(0, ip('198.18.1.2'), ip('224.0.0.18'), 112, 255, new Uint8Array([0x31, 7, 100, 1])), true);
  d.flush();
  const out = frames(port);
  assert.equal(out.length, 1);
  const o = out[0]!;
  assert.equal(o.v, Verdict.OK); // the parser checks the IPv4 header checksum
  assert.deepEqual([...o.f.subarray(10, 16)], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
  assert.deepEqual([...o.f.subarray(16, 22)], [...mac(DS_MAC)]);
  assert.equal(o.p.ttl, 255);
  assert.equal(o.p.proto, 112);
  assert.equal(o.p.saddr, ip('198.18.1.2'));
  assert.deepEqual([...o.f.subarray(o.p.l4, o.p.l4 + 4)], [0x31, 7, 100, 1]);
});
