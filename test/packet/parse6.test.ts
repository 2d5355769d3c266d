// Golden-frame tests for parseFrame6: fields of good IPv6 frames, the extension-header walk, and the verdict of each malformed one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXTHDR_MAX, PARSE, PF, PF6, ParsedFrame, ParsedFrame6, Verdict, parseFrame, parseFrame6, verdictName } from '../../src/packet/index.ts';
import { PacketBuilder, ip6w, type BuiltFrame, type ExtSpec } from './builder.ts';

const p = new ParsedFrame6();
function parse(f: BuiltFrame, opts = 0): Verdict {
  return parseFrame6(f.buf, f.off, f.len, p, opts);
}
function expectVerdict(f: BuiltFrame, v: Verdict, opts = 0): void {
  assert.equal(verdictName(parse(f, opts)), verdictName(v));
}
const CIP = '2001:db8::2';
const VIP = '2001:db8:1::100';
const tcp = (ext: ExtSpec[] = []) =>
  new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, hopLimit: 61, tclass: 0xb8, flowLabel: 0xabcde, ext }).tcp({ sport: 40002, dport: 80, flags: 0x12 }).payload([9, 9, 9]);
const udp = (ext: ExtSpec[] = []) => new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, ext }).udp({ sport: 40001, dport: 53 }).payload([1, 2, 3, 4, 5]);

test('TCP over IPv6: every field', () => {
  const f = tcp().build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.frame, f.off);
  assert.equal(p.ethertype, 0x86dd);
  assert.equal(p.l3, f.off + 24);
  assert.equal(p.payloadLen, 20 + 3);
  assert.equal(p.ipEnd, p.l3 + 40 + 23);
  assert.equal(p.tclass, 0xb8);
  assert.equal(p.flowLabel, 0xabcde);
  assert.equal(p.hopLimit, 61);
  assert.equal(p.nexthdr, 6);
  assert.equal(p.proto, 6);
  assert.deepEqual([...p.saddr], [...ip6w(CIP)]);
  assert.deepEqual([...p.daddr], [...ip6w(VIP)]);
  assert.equal(p.l4, p.l3 + 40);
  assert.equal(p.extCount, 0);
  assert.equal(p.sport, 40002);
  assert.equal(p.dport, 80);
  assert.equal(p.tcpFlags, 0x12);
  assert.equal(p.l4HdrLen, 20);
  assert.equal(p.flags, PF6.L4 | PF6.L4_VERIFIED);
  // The IPv4 parser is untouched: it still hands IPv6 over with a verdict of its own.
  assert.equal(parseFrame(f.buf, f.off, f.len, new ParsedFrame(), 0), Verdict.IPV6);
});

test('UDP and ICMPv6 echo; VLAN tag', () => {
  let f = udp().build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.proto, 17);
  assert.equal(p.l4HdrLen, 8);
  assert.equal(p.dport, 53);
  f = new PacketBuilder().eth({ vlan: 7 }).ipv6({ src: CIP, dst: VIP }).icmp6({ type: 128, rest: (0x1234 << 16) | 1 }).payload([1, 2, 3]).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.vlan, 7);
  assert.equal(p.l3, f.off + 28);
  assert.equal(p.icmpType, 128);
  assert.equal(p.icmpId, 0x1234);
  assert.ok(p.flags & PF6.L4_VERIFIED);
});

test('complete L4 checksums are verified with the IPv6 pseudo-header (ICMPv6 too)', () => {
  expectVerdict(tcp().badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  expectVerdict(udp().badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  expectVerdict(new PacketBuilder().eth().ipv6().icmp6({ type: 128 }).badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  // An ICMPv4-style checksum (no pseudo-header) is wrong for ICMPv6.
  expectVerdict(new PacketBuilder().eth().ipv6({ nextHeader: 58 }).icmp({ type: 128 }).build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  // UDP without a checksum is not allowed over IPv6.
  expectVerdict(new PacketBuilder().eth().ipv6().udp({ zeroChecksum: true }).build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  expectVerdict(tcp().badL4Checksum().build(), Verdict.OK);
});

test('extension headers: hop-by-hop, destination options, routing and AH are walked to the L4 header', () => {
  const f = tcp([{ type: 'hop' }, { type: 'dest', units: 1 }, { type: 'routing', units: 2 }, { type: 'ah', len: 4 }, { type: 'dest' }]).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.nexthdr, 0);
  assert.equal(p.extCount, 5);
  assert.equal(p.extLen, 8 + 16 + 24 + 24 + 8);
  assert.equal(p.l4, p.l3 + 40 + 80);
  assert.equal(p.proto, 6);
  assert.equal(p.dport, 80);
  assert.equal(p.flags, PF6.EXTHDR | PF6.L4 | PF6.L4_VERIFIED);
});

test('a routing header with segments left is flagged and not checksum-verified against the wrong destination', () => {
  const f = tcp([{ type: 'routing', segmentsLeft: 1 }]).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(p.flags & PF6.ROUTING_PENDING);
  assert.equal(p.flags & PF6.L4_VERIFIED, 0);
});

test('hop-by-hop anywhere but first, and chains longer than EXTHDR_MAX, are refused', () => {
  expectVerdict(tcp([{ type: 'dest' }, { type: 'hop' }]).build(), Verdict.BAD_EXTHDR);
  const dests = (n: number): ExtSpec[] => Array.from({ length: n }, () => ({ type: 'dest' }) as const);
  expectVerdict(tcp(dests(EXTHDR_MAX)).build(), Verdict.OK, PARSE.VERIFY_L4);
  expectVerdict(tcp(dests(EXTHDR_MAX + 1)).build(), Verdict.BAD_EXTHDR);
  // A header whose length runs past the payload.
  const f = tcp([{ type: 'dest' }]).build();
  f.buf[f.off + 24 + 40 + 1] = 200;
  expectVerdict(f, Verdict.BAD_EXTHDR);
});

test('fragments: first fragments give L4, non-first FRAGMENT with the fragment header\'s next header, atomic ones are whole', () => {
  let f = udp([{ type: 'frag', offset: 0, more: true, id: 0xdeadbeef }]).build();
  assert.equal(parse(f), Verdict.OK);
  assert.equal(p.flags, PF6.EXTHDR | PF6.FRAG_HDR | PF6.FRAGMENT | PF6.L4);
  assert.equal(p.fragHdr, p.l3 + 40);
  assert.equal(p.fragId, 0xdeadbeef);
  assert.equal(p.dport, 53);
  f = new PacketBuilder().eth().ipv6({ ext: [{ type: 'dest' }, { type: 'frag', offset: 1448, more: true }], nextHeader: 60 }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build();
  // The builder's upper layer is "none" here; make the fragment header say UDP.
  f.buf[f.off + 24 + 40 + 8] = 17;
  assert.equal(parse(f), Verdict.FRAGMENT);
  assert.equal(p.proto, 17);
  assert.equal(p.fragOff, 1448);
  assert.equal(p.l4, p.l3 + 40 + 16);
  assert.equal(p.flags & PF6.L4, 0);
  f = udp([{ type: 'frag', offset: 0, more: false }]).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.flags & PF6.FRAGMENT, 0);
  assert.ok(p.flags & PF6.FRAG_HDR);
  assert.ok(p.flags & PF6.L4_VERIFIED);
});

test('ESP ends the walk as the upper layer; next header 59 has none', () => {
  const esp = new PacketBuilder().eth().ipv6({ ext: [{ type: 'dest' }], nextHeader: 60 }).payload([0, 0, 0, 1, 0, 0, 0, 1, 0xaa, 0xbb]).build();
  esp.buf[esp.off + 24 + 40] = 50;
  assert.equal(parse(esp), Verdict.OK);
  assert.equal(p.proto, 50);
  assert.equal(p.l4, p.l3 + 48);
  assert.equal(p.flags & PF6.L4, 0);
  const none = new PacketBuilder().eth().ipv6({ ext: [{ type: 'hop' }] }).build();
  assert.equal(parse(none), Verdict.NO_NEXT_HEADER);
  assert.equal(p.proto, 59);
  assert.equal(p.l4, p.l3 + 48);
  expectVerdict(new PacketBuilder().eth().ipv6().build(), Verdict.NO_NEXT_HEADER);
});

test('malformed fixed headers and L4 headers', () => {
  expectVerdict(new PacketBuilder().eth().ipv6({ version: 4 }).tcp().build(), Verdict.BAD_VERSION);
  expectVerdict(new PacketBuilder().eth().ipv6({ payloadLen: 200 }).tcp().build(), Verdict.BAD_LENGTH);
  // Payload length 0: a jumbogram after hop-by-hop (refused), else an empty datagram.
  expectVerdict(new PacketBuilder().eth().ipv6({ payloadLen: 0, ext: [{ type: 'hop' }] }).tcp().build(), Verdict.BAD_LENGTH);
  expectVerdict(new PacketBuilder().eth().ipv6({ payloadLen: 0 }).tcp().build(), Verdict.TRUNCATED);
  expectVerdict(new PacketBuilder().eth().ipv6().tcp({ doff: 4 }).build(), Verdict.BAD_L4_HEADER);
  expectVerdict(new PacketBuilder().eth().ipv6().tcp({ doff: 15 }).build(), Verdict.BAD_L4_HEADER);
  expectVerdict(new PacketBuilder().eth().ipv6().udp({ len: 7 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(new PacketBuilder().eth().ipv6().udp({ len: 100 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(new PacketBuilder().eth().ipv4().tcp().build(), Verdict.OTHER_ETHERTYPE);
  expectVerdict(new PacketBuilder().eth().arp({ op: 1, sha: '02:00:00:00:00:01', spa: '198.18.0.1', tpa: '198.18.0.2' }).build(), Verdict.ARP);
  // Ethernet padding after the datagram is not part of it.
  const f = tcp().build({ pad: 200 });
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.ipEnd, p.l3 + 63);
});

test('every truncation of a frame with extension headers is TRUNCATED or BAD_LENGTH, never OK', () => {
  const full = tcp([{ type: 'hop' }, { type: 'frag', offset: 0, more: true }]).build();
  for (let cut = 0; cut < full.len; cut++) {
    const v = parseFrame6(full.buf, full.off, cut, p, 0);
    assert.ok(v === Verdict.TRUNCATED || v === Verdict.BAD_LENGTH, `cut at ${cut}: ${verdictName(v)}`);
  }
});

test('vnet: NEEDS_CSUM must point at this L4 checksum (past the extension headers)', () => {
  let f = tcp([{ type: 'dest' }]).partialChecksum().build();
  assert.equal(parse(f), Verdict.OK);
  assert.equal(p.flags & (PF6.NEEDS_CSUM | PF6.CSUM_PARTIAL), PF6.NEEDS_CSUM | PF6.CSUM_PARTIAL);
  assert.equal(p.csumStart, 14 + 40 + 8);
  f = udp().partialChecksum().build();
  assert.equal(parse(f), Verdict.OK);
  assert.equal(p.csumOffset, 6);
  expectVerdict(tcp([{ type: 'dest' }]).partialChecksum().vnet({ csumStart: 14 + 40 }).build(), Verdict.BAD_VNET_CSUM);
  expectVerdict(tcp().partialChecksum().vnet({ csumOffset: 6 }).build(), Verdict.BAD_VNET_CSUM);
  // Partial frames are not verified even when asked.
  f = tcp().partialChecksum().build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.flags & PF6.L4_VERIFIED, 0);
});

test('GSO: TCPV6 on TCP and UDP_L4 on UDP are taken; a mismatch or gso_size 0 is BAD_GSO; payload length 0 means "the frame"', () => {
  let f = tcp().partialChecksum().vnet({ gsoType: 4, gsoSize: 1440, hdrLen: 14 + 40 + 20 }).build();
  assert.equal(parse(f), Verdict.OK);
  assert.ok(p.flags & PF6.GSO);
  assert.equal(p.gsoSize, 1440);
  expectVerdict(tcp().partialChecksum().vnet({ gsoType: 1, gsoSize: 1440 }).build(), Verdict.BAD_GSO);
  expectVerdict(tcp().partialChecksum().vnet({ gsoType: 4, gsoSize: 0 }).build(), Verdict.BAD_GSO);
  expectVerdict(udp().partialChecksum().vnet({ gsoType: 4, gsoSize: 1000 }).build(), Verdict.BAD_GSO);
  expectVerdict(udp().partialChecksum().vnet({ gsoType: 5, gsoSize: 1000 }).build(), Verdict.OK);
  // A BIG TCP super-segment: payload length 0, length from the frame.
  f = new PacketBuilder().eth().ipv6({ payloadLen: 0 }).tcp().payload(new Array(100).fill(7)).partialChecksum().vnet({ gsoType: 4, gsoSize: 50 }).build();
  assert.equal(parse(f), Verdict.OK);
  assert.equal(p.ipEnd, f.off + f.len);
  assert.equal(p.payloadLen, 20 + 100);
});

test('the PF6 bits shared with IPv4 have PF\'s values (code that only tests L4 / CSUM_PARTIAL / GSO works on both)', () => {
  for (const k of ['VLAN', 'FRAGMENT', 'L4', 'NEEDS_CSUM', 'CSUM_PARTIAL', 'DATA_VALID', 'GSO', 'L4_VERIFIED'] as const) assert.equal(PF6[k], PF[k], k);
  // The IPv6-only bits do not collide with any IPv4 one.
  const v4 = Object.values(PF).reduce((a, b) => a | b, 0);
  assert.equal((PF6.ROUTING_PENDING | PF6.FRAG_HDR) & v4, 0);
});
