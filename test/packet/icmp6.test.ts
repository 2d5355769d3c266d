// ICMPv6 (errors, echo, embedded-datagram translation), ip6ip6 and Neighbour Discovery golden tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ALL_NODES,
  ICMP6,
  ICMP6_ERROR_EMBED_MAX,
  IcmpInner6,
  ND,
  NdMessage,
  PARSE,
  ParsedFrame6,
  Verdict,
  buildNeighborAdvert,
  buildNeighborSolicit,
  buildPacketTooBig,
  buildPortUnreachable6,
  buildTimeExceeded6,
  buildUnsolicitedNeighborAdvert,
  frameSetDaddr6,
  frameSetSaddr6,
  icmp6EchoReplyInPlace,
  icmp6ErrorAllowed,
  icmp6InnerSetDaddr,
  icmp6InnerSetDport,
  icmp6InnerSetSaddr,
  icmp6InnerSetSport,
  ip6ip6Decap,
  ip6ip6Encap,
  ipv6FromString,
  ipv6MulticastMac,
  ipv6ToString,
  macToString,
  parseFrame6,
  parseIcmp6Inner,
  parseNdisc,
  solicitedNodeMulticast,
} from '../../src/packet/index.ts';
import { PacketBuilder, hex, ip6, ip6w, mac, type BuiltFrame } from './builder.ts';

const p = new ParsedFrame6();
const CIP = '2001:db8::2';
const VIP = '2001:db8:1::100';
const DIP = '2001:db8:2::1';
const RIP = '2001:db8:2::11';
const ROUTER = '2001:db8:1::1';
const MY_MAC = mac('02:00:00:00:01:02');
const PEER_MAC = mac('02:00:00:00:0f:01');
/** The datagram bytes (from the IPv6 header on) of a built frame. */
const datagram = (f: BuiltFrame) => Array.from(f.buf.subarray(f.off + 24, f.off + f.len));

test('Packet Too Big: MTU, source, hop limit 64, the original embedded, equal to a frame built from scratch', () => {
  const orig = new PacketBuilder().eth({ dst: '02:00:00:00:01:02', src: '02:00:00:00:0f:01' }).ipv6({ src: CIP, dst: VIP }).tcp({ sport: 40000, dport: 80 }).payload(new Array(100).fill(0x5a)).build();
  assert.equal(parseFrame6(orig.buf, orig.off, orig.len, p, 0), Verdict.OK);
  assert.ok(icmp6ErrorAllowed(orig.buf, p, ICMP6.PKT_TOOBIG));
  const out = new Uint8Array(2048);
  const n = buildPacketTooBig(out, 100, orig.buf, p.l3, p.ipEnd, 1460, ip6w(VIP), 0, orig.buf, p.eth + 6, MY_MAC, 0);
  const want = new PacketBuilder()
    .eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' })
    .ipv6({ src: VIP, dst: CIP, hopLimit: 64 })
    .icmp6({ type: 2, code: 0, rest: 1460 })
    .payload(datagram(orig))
    .build();
  assert.equal(n, want.len);
  assert.equal(hex(out, 100, n), hex(want.buf, want.off, want.len));
  assert.equal(parseFrame6(out, 100, n, p, PARSE.VERIFY_L4), Verdict.OK);
});

test('errors stay within 1280 bytes (RFC 4443 §2.4(c)), and can be built over the original in place', () => {
  const big = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).udp().payload(new Array(1400).fill(1)).build({ headroom: 0, tailroom: 200 });
  assert.equal(parseFrame6(big.buf, big.off, big.len, p, 0), Verdict.OK);
  const copy = big.buf.slice();
  const n = buildPortUnreachable6(big.buf, 0, big.buf, p.l3, p.ipEnd, ip6w(VIP), 0, PEER_MAC, 0, MY_MAC, 0);
  assert.equal(n, 10 + 14 + 1280);
  const q = new ParsedFrame6();
  assert.equal(parseFrame6(big.buf, 0, n, q, PARSE.VERIFY_L4), Verdict.OK);
  assert.equal(q.payloadLen, 1240);
  assert.equal(q.icmpType, ICMP6.DEST_UNREACH);
  assert.equal(q.icmpCode, ICMP6.PORT_UNREACH);
  assert.equal(hex(big.buf, q.l4 + 8, ICMP6_ERROR_EMBED_MAX), hex(copy, 24, ICMP6_ERROR_EMBED_MAX));
  assert.equal(ipv6ToString(q.daddr), CIP);
});

test('time exceeded (hop limit): type 3 code 0', () => {
  const orig = new PacketBuilder().eth().ipv6({ src: CIP, dst: RIP, hopLimit: 1 }).udp().build();
  assert.equal(parseFrame6(orig.buf, orig.off, orig.len, p, 0), Verdict.OK);
  const out = new Uint8Array(512);
  const n = buildTimeExceeded6(out, 0, orig.buf, p.l3, p.ipEnd, ip6w(DIP), 0, PEER_MAC, 0, MY_MAC, 0);
  const want = new PacketBuilder().eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' }).ipv6({ src: DIP, dst: CIP }).icmp6({ type: 3, code: 0 }).payload(datagram(orig)).build();
  assert.equal(hex(out, 0, n), hex(want.buf, want.off, want.len));
});

test('RFC 4443 §2.4(e): never about an error or a redirect, to :: or multicast sources, or to multicast (except Packet Too Big)', () => {
  const allowed = (f: BuiltFrame, type: number) => {
    assert.notEqual(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.TRUNCATED);
    return icmp6ErrorAllowed(f.buf, p, type);
  };
  const err = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).icmp6({ type: 1, code: 4 }).payload(new Array(48).fill(0)).build();
  assert.equal(allowed(err, ICMP6.PKT_TOOBIG), false);
  const redirect = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).icmp6({ type: 137 }).payload(new Array(32).fill(0)).build();
  assert.equal(allowed(redirect, ICMP6.DEST_UNREACH), false);
  const echo = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).icmp6({ type: 128 }).build();
  assert.equal(allowed(echo, ICMP6.DEST_UNREACH), true);
  const fromUnspec = new PacketBuilder().eth().ipv6({ src: '::', dst: VIP }).udp().build();
  assert.equal(allowed(fromUnspec, ICMP6.PKT_TOOBIG), false);
  const fromMcast = new PacketBuilder().eth().ipv6({ src: 'ff02::1', dst: VIP }).udp().build();
  assert.equal(allowed(fromMcast, ICMP6.PKT_TOOBIG), false);
  const toMcast = new PacketBuilder().eth({ dst: '33:33:00:00:00:fb' }).ipv6({ src: CIP, dst: 'ff02::fb' }).udp().build();
  assert.equal(allowed(toMcast, ICMP6.DEST_UNREACH), false);
  assert.equal(allowed(toMcast, ICMP6.PKT_TOOBIG), true);
  const l2Bcast = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).ipv6({ src: CIP, dst: VIP }).udp().build();
  assert.equal(allowed(l2Bcast, ICMP6.TIME_EXCEED), false);
  // A non-first fragment may be answered (IPv6 has no first-fragment rule).
  const frag = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, ext: [{ type: 'frag', offset: 8 }] }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build();
  assert.equal(allowed(frag, ICMP6.TIME_EXCEED), true);
});

test('echo reply in place, with extension headers kept; a partial checksum is completed', () => {
  for (const partial of [false, true]) {
    const b = new PacketBuilder().eth({ dst: '02:00:00:00:01:02', src: '02:00:00:00:0f:01' }).ipv6({ src: CIP, dst: VIP, hopLimit: 50, ext: [{ type: 'dest' }] }).icmp6({ type: 128, rest: 0x77770003 }).payload([1, 2, 3, 4, 5]);
    if (partial) b.partialChecksum();
    const f = b.build({ pad: 100 });
    assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
    const n = icmp6EchoReplyInPlace(f.buf, p, 64);
    const want = new PacketBuilder().eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' }).ipv6({ src: VIP, dst: CIP, hopLimit: 64, ext: [{ type: 'dest' }] }).icmp6({ type: 129, rest: 0x77770003 }).payload([1, 2, 3, 4, 5]).build();
    assert.equal(hex(f.buf, f.off, n), hex(want.buf, want.off, want.len), partial ? 'partial' : 'complete');
    assert.equal(icmp6EchoReplyInPlace(f.buf, p, 64), -1, 'a reply is not answered');
  }
});

test('NAT translation of an ICMPv6 error both ways: outer and embedded addresses, embedded port, every checksum', () => {
  // The client-side router reports Packet Too Big to VIP about a reply VIP:80 -> CIP the director sent.
  const inner = new PacketBuilder().ipv6({ src: VIP, dst: CIP, ext: [{ type: 'dest' }] }).tcp({ sport: 80, dport: 40000, flags: 0x10 }).payload(new Array(40).fill(3));
  const innerRs = new PacketBuilder().ipv6({ src: RIP, dst: CIP, ext: [{ type: 'dest' }] }).tcp({ sport: 8080, dport: 40000, flags: 0x10 }).payload(new Array(40).fill(3));
  const bytes = (b: PacketBuilder) => {
    const f = b.eth().build();
    return datagram(f);
  };
  const f = new PacketBuilder().eth().ipv6({ src: ROUTER, dst: VIP }).icmp6({ type: 2, rest: 1400 }).payload(bytes(inner)).build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
  const ii = new IcmpInner6();
  assert.ok(parseIcmp6Inner(f.buf, p, ii));
  assert.equal(ii.proto, 6);
  assert.equal(ii.hasPorts, true);
  assert.equal(ii.sport, 80);
  assert.equal(ii.dport, 40000);
  assert.equal(ipv6ToString(ii.saddr), VIP);
  // In: the error goes to the real server as if the router had answered it.
  frameSetDaddr6(f.buf, p, ip6w(RIP), 0);
  icmp6InnerSetSaddr(f.buf, ii, ip6w(RIP), 0);
  icmp6InnerSetSport(f.buf, ii, 8080);
  const want = new PacketBuilder().eth().ipv6({ src: ROUTER, dst: RIP }).icmp6({ type: 2, rest: 1400 }).payload(bytes(innerRs)).build();
  assert.equal(hex(f.buf, f.off, f.len), hex(want.buf, want.off, want.len));
  // Out: an error from the real server's side about CIP -> RIP:8080 becomes one about CIP -> VIP:80.
  const inner2 = new PacketBuilder().ipv6({ src: CIP, dst: RIP }).udp({ sport: 40000, dport: 8080 }).payload([1, 2, 3]);
  const inner2v = new PacketBuilder().ipv6({ src: CIP, dst: VIP }).udp({ sport: 40000, dport: 80 }).payload([1, 2, 3]);
  const g = new PacketBuilder().eth().ipv6({ src: RIP, dst: CIP }).icmp6({ type: 1, code: 4 }).payload(bytes(inner2)).build();
  assert.equal(parseFrame6(g.buf, g.off, g.len, p, 0), Verdict.OK);
  assert.ok(parseIcmp6Inner(g.buf, p, ii));
  frameSetSaddr6(g.buf, p, ip6w(VIP), 0);
  icmp6InnerSetDaddr(g.buf, ii, ip6w(VIP), 0);
  icmp6InnerSetDport(g.buf, ii, 80);
  const want2 = new PacketBuilder().eth().ipv6({ src: VIP, dst: CIP }).icmp6({ type: 1, code: 4 }).payload(bytes(inner2v)).build();
  assert.equal(hex(g.buf, g.off, g.len), hex(want2.buf, want2.off, want2.len));
});

test('embedded datagrams: truncated L4, non-first fragments and non-errors', () => {
  const inner = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).tcp().build();
  const cut = datagram(inner).slice(0, 40 + 4); // fixed header + ports only
  const f = new PacketBuilder().eth().ipv6({ src: ROUTER, dst: CIP }).icmp6({ type: 3 }).payload(cut).build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
  const ii = new IcmpInner6();
  assert.ok(parseIcmp6Inner(f.buf, p, ii));
  assert.equal(ii.hasPorts, true);
  // The embedded TCP checksum was not captured: only the ports and the outer checksum change.
  icmp6InnerSetSport(f.buf, ii, 1234);
  icmp6InnerSetSaddr(f.buf, ii, ip6w(RIP), 0);
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
  const fr = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, ext: [{ type: 'frag', offset: 16 }] }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build();
  const g = new PacketBuilder().eth().ipv6({ src: ROUTER, dst: CIP }).icmp6({ type: 3 }).payload(datagram(fr)).build();
  assert.equal(parseFrame6(g.buf, g.off, g.len, p, 0), Verdict.OK);
  assert.ok(parseIcmp6Inner(g.buf, p, ii));
  assert.equal(ii.fragment, true);
  assert.equal(ii.hasPorts, false);
  const echo = new PacketBuilder().eth().ipv6().icmp6({ type: 128 }).payload(datagram(fr)).build();
  assert.equal(parseFrame6(echo.buf, echo.off, echo.len, p, 0), Verdict.OK);
  assert.equal(parseIcmp6Inner(echo.buf, p, ii), false);
});

test('ip6ip6: encapsulation as ip_vs_tunnel_xmit_v6 (traffic class and hop limit copied, flow label 0), decapsulation back', () => {
  const f = new PacketBuilder().eth({ vlan: 3 }).ipv6({ src: CIP, dst: VIP, tclass: 0x2e, flowLabel: 0x12345, hopLimit: 57 }).tcp().payload([1, 2, 3]).partialChecksum().build();
  const orig = f.buf.slice(f.off, f.off + f.len);
  const nOff = ip6ip6Encap(f.buf, f.off, f.len, ip6w(DIP), 0, ip6w(RIP), 0);
  assert.equal(nOff, f.off - 40);
  const n = f.len + 40;
  assert.equal(parseFrame6(f.buf, nOff, n, p, 0), Verdict.OK);
  assert.equal(p.proto, 41);
  assert.equal(p.tclass, 0x2e);
  assert.equal(p.flowLabel, 0);
  assert.equal(p.hopLimit, 57);
  assert.equal(p.payloadLen, 40 + 23);
  assert.equal(ipv6ToString(p.saddr), DIP);
  assert.equal(ipv6ToString(p.daddr), RIP);
  // csum_start moved with the inner header; the inner datagram is untouched.
  assert.equal(f.buf[nOff + 6]! | (f.buf[nOff + 7]! << 8), 18 + 40 + 40);
  assert.equal(hex(f.buf, nOff + 10 + 18 + 40, f.len - 28), hex(orig, 28, f.len - 28));
  const back = ip6ip6Decap(f.buf, nOff, n);
  assert.equal(back, f.off);
  assert.equal(hex(f.buf, back, f.len), hex(orig));
  // No headroom, or not IPv6: refused, nothing changed.
  const g = new PacketBuilder().eth().ipv6().tcp().build({ headroom: 10 });
  assert.equal(ip6ip6Encap(g.buf, g.off, g.len, ip6w(DIP), 0, ip6w(RIP), 0), -1);
  const v4 = new PacketBuilder().eth().ipv4().tcp().build();
  assert.equal(ip6ip6Encap(v4.buf, v4.off, v4.len, ip6w(DIP), 0, ip6w(RIP), 0), -1);
  assert.equal(ip6ip6Decap(v4.buf, v4.off, v4.len), -1);
});

test('ip6ip6 decapsulation skips the tunnel encapsulation-limit destination option a Linux ip6tnl adds', () => {
  const inner = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).udp().payload([7, 7]).build();
  const f = new PacketBuilder().eth().ipv6({ src: DIP, dst: RIP, ext: [{ type: 'dest' }], nextHeader: 60 }).payload(datagram(inner)).build();
  f.buf[f.off + 24 + 40] = 41; // the destination options header's next header
  const back = ip6ip6Decap(f.buf, f.off, f.len);
  assert.equal(back, f.off + 48);
  assert.equal(hex(f.buf, back + 10, f.len - 48 - 10), hex(inner.buf, inner.off + 10, inner.len - 10));
});

test('property: ip6ip6 encap then decap gives back the frame, for any vnet header and extension headers', () => {
  fc.assert(
    fc.property(
      fc.record({
        vlan: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
        payload: fc.uint8Array({ maxLength: 200 }),
        hop: fc.integer({ min: 0, max: 255 }),
        partial: fc.boolean(),
        dest: fc.boolean(),
        src: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
      }),
      (s) => {
        const b = new PacketBuilder().eth({ vlan: s.vlan }).ipv6({ hopLimit: s.hop, ext: s.dest ? [{ type: 'dest' }] : [] }).udp().payload(s.payload);
        if (s.partial) b.partialChecksum();
        const f = b.build({ headroom: 64 });
        const orig = f.buf.slice();
        const nOff = ip6ip6Encap(f.buf, f.off, f.len, Uint32Array.from(s.src), 0, ip6w(RIP), 0);
        assert.equal(nOff, f.off - 40);
        assert.equal(parseFrame6(f.buf, nOff, f.len + 40, p, 0), Verdict.OK);
        assert.equal(p.hopLimit, s.hop);
        assert.equal(ip6ip6Decap(f.buf, nOff, f.len + 40), f.off);
        assert.equal(hex(f.buf, f.off, f.len), hex(orig, f.off, f.len));
      },
    ),
    { numRuns: 500 },
  );
});

test('solicited-node multicast and its MAC (RFC 4291 §2.7.1, RFC 2464 §7)', () => {
  const out = new Uint32Array(4);
  solicitedNodeMulticast(ip6w('2001:db8::1:2:3'), 0, out, 0);
  assert.equal(ipv6ToString(out), 'ff02::1:ff02:3');
  const m = new Uint8Array(6);
  ipv6MulticastMac(out, 0, m, 0);
  assert.equal(macToString(m, 0), '33:33:ff:02:00:03');
});

test('NS: built, parsed back with its source link-layer address; DAD form without it', () => {
  const out = new Uint8Array(200);
  const n = buildNeighborSolicit(out, 0, MY_MAC, 0, ip6w(DIP), 0, ip6w(RIP), 0);
  const want = new PacketBuilder()
    .eth({ dst: '33:33:ff:00:00:11', src: '02:00:00:00:01:02' })
    .ipv6({ src: DIP, dst: 'ff02::1:ff00:11', hopLimit: 255 })
    .icmp6({ type: 135, rest: 0 })
    .payload([...ip6(RIP), 1, 1, ...MY_MAC])
    .build();
  assert.equal(hex(out, 0, n), hex(want.buf, want.off, want.len));
  assert.equal(parseFrame6(out, 0, n, p, 0), Verdict.OK);
  const nd = new NdMessage();
  assert.ok(parseNdisc(out, p, nd));
  assert.equal(nd.type, ICMP6.NEIGH_SOLICIT);
  assert.equal(ipv6ToString(nd.target), RIP);
  assert.equal(macToString(out, nd.lladdr), '02:00:00:00:01:02');
  assert.equal(nd.srcUnspecified, false);
  const d = buildNeighborSolicit(out, 0, MY_MAC, 0, new Uint32Array(4), 0, ip6w(RIP), 0);
  assert.equal(d, 10 + 14 + 40 + 24);
  assert.equal(parseFrame6(out, 0, d, p, 0), Verdict.OK);
  assert.ok(parseNdisc(out, p, nd));
  assert.equal(nd.srcUnspecified, true);
  assert.equal(nd.lladdr, -1);
});

test('NA: the answer to an NS, and the unsolicited NA sent for each address at start', () => {
  const out = new Uint8Array(200);
  const n = buildNeighborAdvert(out, 0, MY_MAC, 0, ip6w(VIP), 0, PEER_MAC, 0, ip6w(ROUTER), 0, ip6w(VIP), 0, ND.NA_SOLICITED | ND.NA_OVERRIDE);
  const want = new PacketBuilder()
    .eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' })
    .ipv6({ src: VIP, dst: ROUTER, hopLimit: 255 })
    .icmp6({ type: 136, rest: 0x60000000 })
    .payload([...ip6(VIP), 2, 1, ...MY_MAC])
    .build();
  assert.equal(hex(out, 0, n), hex(want.buf, want.off, want.len));
  assert.equal(parseFrame6(out, 0, n, p, 0), Verdict.OK);
  const nd = new NdMessage();
  assert.ok(parseNdisc(out, p, nd));
  assert.equal(nd.flags, ND.NA_SOLICITED | ND.NA_OVERRIDE);
  assert.equal(macToString(out, nd.lladdr), '02:00:00:00:01:02');
  const u = buildUnsolicitedNeighborAdvert(out, 0, MY_MAC, 0, ip6w(VIP), 0);
  const wantU = new PacketBuilder()
    .eth({ dst: '33:33:00:00:00:01', src: '02:00:00:00:01:02' })
    .ipv6({ src: VIP, dst: 'ff02::1', hopLimit: 255 })
    .icmp6({ type: 136, rest: 0x20000000 })
    .payload([...ip6(VIP), 2, 1, ...MY_MAC])
    .build();
  assert.equal(hex(out, 0, u), hex(wantU.buf, wantU.off, wantU.len));
  // On a link where the director forwards (a NAT inside net), R as well.
  buildUnsolicitedNeighborAdvert(out, 0, MY_MAC, 0, ip6w(DIP), 0, true);
  assert.equal(parseFrame6(out, 0, u, p, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(parseNdisc(out, p, nd));
  assert.equal(nd.flags, ND.NA_ROUTER | ND.NA_OVERRIDE);
  assert.equal(ipv6ToString(ALL_NODES), 'ff02::1');
});

test('RFC 4861 §7.1 validity: hop limit, code, checksum, target, options, DAD and multicast-solicited rules', () => {
  const nd = new NdMessage();
  const ns = (o: { hop?: number; code?: number; src?: string; dst?: string; target?: string; opt?: number[]; bad?: boolean }) => {
    const b = new PacketBuilder()
      .eth()
      .ipv6({ src: o.src ?? ROUTER, dst: o.dst ?? 'ff02::1:ff00:100', hopLimit: o.hop ?? 255 })
      .icmp6({ type: 135, code: o.code ?? 0 })
      .payload([...ip6(o.target ?? VIP), ...(o.opt ?? [1, 1, ...PEER_MAC])]);
    if (o.bad) b.badL4Checksum();
    const f = b.build();
    assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
    return parseNdisc(f.buf, p, nd);
  };
  assert.equal(ns({}), true);
  assert.equal(ns({ hop: 254 }), false);
  assert.equal(ns({ code: 1 }), false);
  assert.equal(ns({ bad: true }), false);
  assert.equal(ns({ target: 'ff02::1' }), false);
  assert.equal(ns({ opt: [1, 0, 0, 0, 0, 0, 0, 0] }), false, 'zero-length option');
  assert.equal(ns({ opt: [1, 2, ...PEER_MAC] }), false, 'option past the message');
  assert.equal(ns({ src: '::' }), false, 'DAD with a source link-layer option');
  assert.equal(ns({ src: '::', opt: [] }), true);
  assert.equal(ns({ src: '::', dst: VIP, opt: [] }), false, 'DAD not to a solicited-node group');
  assert.equal(ns({ opt: [] }), true);
  assert.equal(nd.lladdr, -1);
  const na = (dst: string, flags: number) => {
    const f = new PacketBuilder().eth().ipv6({ src: RIP, dst, hopLimit: 255 }).icmp6({ type: 136, rest: flags << 24 }).payload([...ip6(RIP), 2, 1, ...PEER_MAC]).build();
    assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
    return parseNdisc(f.buf, p, nd);
  };
  assert.equal(na(DIP, 0x60), true);
  assert.equal(na('ff02::1', 0x20), true);
  assert.equal(na('ff02::1', 0x60), false, 'solicited NA to multicast');
  const short = new PacketBuilder().eth().ipv6({ hopLimit: 255 }).icmp6({ type: 135 }).payload([1, 2, 3]).build();
  assert.equal(parseFrame6(short.buf, short.off, short.len, p, 0), Verdict.OK);
  assert.equal(parseNdisc(short.buf, p, nd), false);
});

test('IPv6 text: glibc inet_ntop forms (what ipvsadm prints) and parsing', () => {
  const cases: [string, string][] = [
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:c612:164', '::ffff:198.18.1.100'],
    ['::c612:164', '::198.18.1.100'],
    ['::1:c612:164', '::1:c612:164'],
    ['FE80::A:b', 'fe80::a:b'],
  ];
  const w = new Uint32Array(4);
  for (const [text, want] of cases) {
    assert.ok(ipv6FromString(text, w, 0), text);
    assert.equal(ipv6ToString(w), want);
    assert.ok(ipv6FromString(want, w, 0));
    assert.equal(ipv6ToString(w), want);
  }
  for (const bad of ['', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7', '::1.2.3', '::256.1.1.1']) {
    assert.equal(ipv6FromString(bad, w, 0), false, bad);
  }
});
