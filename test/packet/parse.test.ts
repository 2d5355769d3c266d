// Golden-frame tests for parseFrame: fields of good frames and the verdict of each malformed one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PARSE, PF, ParsedFrame, Verdict, parseFrame, verdictName } from '../../src/packet/index.ts';
import { PacketBuilder, ip, type BuiltFrame } from './builder.ts';

const p = new ParsedFrame();
function parse(f: BuiltFrame, opts = 0): Verdict {
  return parseFrame(f.buf, f.off, f.len, p, opts);
}
function expectVerdict(f: BuiltFrame, v: Verdict, opts = 0): void {
  const got = parse(f, opts);
  assert.equal(verdictName(got), verdictName(v));
}

const udp = () => new PacketBuilder().eth().ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 61, id: 0x4242, df: true }).udp({ sport: 40001, dport: 53 }).payload([1, 2, 3, 4, 5]);
const tcp = () => new PacketBuilder().eth().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40002, dport: 80, flags: 0x12 }).payload([9, 9, 9]);

test('UDP frame: every field', () => {
  const f = udp().build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.frame, f.off);
  assert.equal(p.eth, f.off + 10);
  assert.equal(p.ethertype, 0x0800);
  assert.equal(p.l3, f.off + 24);
  assert.equal(p.ipHdrLen, 20);
  assert.equal(p.totLen, 20 + 8 + 5);
  assert.equal(p.ipEnd, p.l3 + 33);
  assert.equal(p.ttl, 61);
  assert.equal(p.id, 0x4242);
  assert.equal(p.proto, 17);
  assert.equal(p.saddr, ip('198.18.0.2'));
  assert.equal(p.daddr, ip('198.18.1.100'));
  assert.equal(p.l4, p.l3 + 20);
  assert.equal(p.sport, 40001);
  assert.equal(p.dport, 53);
  assert.equal(p.l4HdrLen, 8);
  assert.equal(p.flags, PF.DF | PF.L4 | PF.L4_VERIFIED);
});

test('TCP frame: ports, flags, header length', () => {
  const f = tcp().build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.proto, 6);
  assert.equal(p.sport, 40002);
  assert.equal(p.dport, 80);
  assert.equal(p.tcpFlags, 0x12);
  assert.equal(p.l4HdrLen, 20);
  assert.ok(p.flags & PF.L4_VERIFIED);
});

test('ICMP echo: type, code, id', () => {
  const f = new PacketBuilder().eth().ipv4().icmp({ type: 8, rest: (0x77 << 16) | 1 }).payload([1, 2, 3]).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.proto, 1);
  assert.equal(p.icmpType, 8);
  assert.equal(p.icmpCode, 0);
  assert.equal(p.icmpId, 0x77);
});

test('VLAN tag', () => {
  const f = udp().eth({ vlan: 0x2064 }).build();
  assert.equal(parse(f), Verdict.OK);
  assert.ok(p.flags & PF.VLAN);
  assert.equal(p.vlan, 0x2064);
  assert.equal(p.l3, f.off + 10 + 18);
  assert.equal(p.dport, 53);
});

test('IP options are flagged and skipped', () => {
  const f = udp().ipv4({ options: [0x94, 4, 0, 0] /* router alert */ }).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(p.flags & PF.IP_OPTIONS);
  assert.equal(p.ipHdrLen, 24);
  assert.equal(p.l4, p.l3 + 24);
  assert.equal(p.dport, 53);
});

test('ARP, IPv6 and other ethertypes', () => {
  const arp = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 1, sha: '02:00:00:00:00:01', spa: '198.18.1.1', tpa: '198.18.1.2' }).build();
  expectVerdict(arp, Verdict.ARP);
  assert.equal(p.l3, arp.off + 24);
  expectVerdict(new PacketBuilder().eth().ipv6().payload([1, 2]).build(), Verdict.IPV6);
  expectVerdict(new PacketBuilder().eth({ vlan: 5 }).ipv6().build(), Verdict.IPV6);
  expectVerdict(new PacketBuilder().eth().ethertype(0x88cc).payload([0, 0]).build(), Verdict.OTHER_ETHERTYPE);
  assert.equal(p.ethertype, 0x88cc);
  // A second tag is not looked into.
  expectVerdict(new PacketBuilder().eth({ vlan: 5 }).ethertype(0x8100).payload([0, 1, 8, 0]).build(), Verdict.OTHER_ETHERTYPE);
});

test('fragments: first has ports, later ones are FRAGMENT', () => {
  const first = udp().ipv4({ mf: true }).build();
  assert.equal(parse(first, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(p.flags & PF.FRAGMENT);
  assert.ok(p.flags & PF.L4);
  assert.ok(!(p.flags & PF.L4_VERIFIED), 'a first fragment cannot be verified');
  assert.equal(p.dport, 53);
  const later = new PacketBuilder().eth().ipv4({ fragOff: 1480, proto: 17 }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build();
  expectVerdict(later, Verdict.FRAGMENT);
  assert.equal(p.fragOff, 1480);
  assert.equal(p.dport, 0);
  assert.ok(!(p.flags & PF.L4));
  assert.equal(p.saddr, ip('198.18.0.2'));
});

test('malformed: truncated at every layer', () => {
  const full = udp().build();
  for (let cut = 0; cut < full.len; cut++) {
    const v = parse(udp().build({ truncate: cut }));
    // Cuts inside the IP payload make total length exceed the capture; earlier cuts are TRUNCATED.
    const expect = cut < 10 + 14 + 20 ? Verdict.TRUNCATED : Verdict.BAD_LENGTH;
    assert.equal(verdictName(v), verdictName(expect), `cut at ${cut}`);
  }
  const t = tcp().build();
  for (let cut = 0; cut < t.len; cut++) assert.notEqual(parse(tcp().build({ truncate: cut })), Verdict.OK);
  // Total length says the TCP header is incomplete.
  expectVerdict(new PacketBuilder().eth().ipv4({ proto: 6 }).payload([0, 80, 0, 80, 0, 0]).build(), Verdict.TRUNCATED);
  expectVerdict(new PacketBuilder().eth().ipv4({ proto: 17 }).payload([0, 80, 0, 80]).build(), Verdict.TRUNCATED);
  expectVerdict(new PacketBuilder().eth({ vlan: 1 }).build({ truncate: 10 + 16 }), Verdict.TRUNCATED);
  expectVerdict(new PacketBuilder().eth().arp({ op: 1, sha: '02:00:00:00:00:01', spa: '1.1.1.1', tpa: '1.1.1.2' }).build({ truncate: 10 + 14 + 27 }), Verdict.TRUNCATED);
});

test('malformed: version, IHL, lengths, checksums, TCP data offset', () => {
  expectVerdict(udp().ipv4({ version: 6 }).build(), Verdict.BAD_VERSION);
  expectVerdict(udp().ipv4({ ihl: 4 }).build(), Verdict.BAD_IHL);
  expectVerdict(udp().ipv4({ ihl: 15 }).build(), Verdict.TRUNCATED);
  expectVerdict(udp().ipv4({ totLen: 200 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(udp().ipv4({ totLen: 19 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(udp().ipv4({ badChecksum: true }).build(), Verdict.BAD_IP_CHECKSUM);
  expectVerdict(udp().ipv4({ badChecksum: true }).build(), Verdict.OK, PARSE.NO_IP_CSUM);
  expectVerdict(udp().udp({ len: 7 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(udp().udp({ len: 100 }).build(), Verdict.BAD_LENGTH);
  expectVerdict(tcp().tcp({ doff: 4 }).build(), Verdict.BAD_L4_HEADER);
  expectVerdict(tcp().tcp({ doff: 15 }).build(), Verdict.BAD_L4_HEADER);
  expectVerdict(udp().badL4Checksum().build(), Verdict.OK);
  expectVerdict(udp().badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  expectVerdict(tcp().badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  expectVerdict(new PacketBuilder().eth().ipv4().icmp({ type: 8 }).badL4Checksum().build(), Verdict.BAD_L4_CHECKSUM, PARSE.VERIFY_L4);
  // UDP checksum 0 means none.
  expectVerdict(udp().udp({ zeroChecksum: true }).build(), Verdict.OK, PARSE.VERIFY_L4);
});

test('Ethernet padding beyond total length is allowed', () => {
  const f = udp().build({ pad: 60 });
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(p.ipEnd, p.l3 + 33);
  assert.ok(p.ipEnd < p.end);
});

test('vnet header: partial checksum, GSO, DATA_VALID', () => {
  const f = tcp().partialChecksum().vnet({ gsoType: 1, gsoSize: 1448, hdrLen: 54 }).build();
  assert.equal(parse(f, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(p.flags & PF.NEEDS_CSUM);
  assert.ok(p.flags & PF.CSUM_PARTIAL);
  assert.ok(p.flags & PF.GSO);
  assert.ok(!(p.flags & PF.L4_VERIFIED));
  assert.equal(p.gsoType, 1);
  assert.equal(p.gsoSize, 1448);
  assert.equal(p.csumStart, 34);
  assert.equal(p.csumOffset, 16);
  const u = udp().partialChecksum().eth({ vlan: 7 }).build();
  assert.equal(parse(u), Verdict.OK);
  assert.equal(p.csumStart, 38);
  assert.ok(p.flags & PF.CSUM_PARTIAL);
  expectVerdict(tcp().partialChecksum().vnet({ csumOffset: 6 }).build(), Verdict.BAD_VNET_CSUM);
  expectVerdict(udp().partialChecksum().vnet({ csumStart: 30 }).build(), Verdict.BAD_VNET_CSUM);
  const dv = udp().badL4Checksum().vnet({ flags: 2 }).build();
  assert.equal(parse(dv, PARSE.VERIFY_L4), Verdict.OK, 'DATA_VALID skips verification');
  assert.ok(p.flags & PF.DATA_VALID);
});

test('a reused ParsedFrame carries nothing over from the previous frame', () => {
  parse(tcp().eth({ vlan: 3 }).build());
  expectVerdict(new PacketBuilder().eth().ipv6().build(), Verdict.IPV6);
  assert.equal(p.vlan, 0);
  assert.equal(p.sport, 0);
  assert.equal(p.flags, 0);
});
