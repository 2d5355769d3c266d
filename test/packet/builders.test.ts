// ARP, ICMP (echo, errors, embedded datagram rewrites) and IPIP golden tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ARP,
  ArpPacket,
  ICMP,
  IcmpInner,
  PARSE,
  ParsedFrame,
  Verdict,
  arpReplyInPlace,
  buildFragNeeded,
  buildGratuitousArp,
  buildPortUnreachable,
  buildTimeExceeded,
  icmpEchoReplyInPlace,
  icmpErrorAllowed,
  icmpInnerSetDaddr,
  icmpInnerSetDport,
  icmpInnerSetSaddr,
  icmpInnerSetSport,
  ipipDecap,
  ipipEncap,
  ipv4ChecksumOk,
  macToString,
  parseArp,
  parseFrame,
  parseIcmpInner,
  setDaddr,
} from '../../src/packet/index.ts';
import { PacketBuilder, hex, ip, mac, refSum } from './builder.ts';

const p = new ParsedFrame();
const MY_MAC = mac('02:00:00:00:01:02');
const PEER_MAC = mac('02:00:00:00:0f:01');

test('ARP: parse a request and answer it in place', () => {
  const f = new PacketBuilder()
    .eth({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:0f:01', vlan: 9 })
    .arp({ op: 1, sha: '02:00:00:00:0f:01', spa: '198.18.1.1', tpa: '198.18.1.100' })
    .build();
  assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.ARP);
  const a = new ArpPacket();
  assert.ok(parseArp(f.buf, p.l3, p.end, a));
  assert.equal(a.op, ARP.REQUEST);
  assert.equal(a.spa, ip('198.18.1.1'));
  assert.equal(a.tpa, ip('198.18.1.100'));
  assert.equal(macToString(f.buf, a.sha), '02:00:00:00:0f:01');
  arpReplyInPlace(f.buf, p.eth, p.l3, MY_MAC, 0);
  const want = new PacketBuilder()
    .eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02', vlan: 9 })
    .arp({ op: 2, sha: '02:00:00:00:01:02', spa: '198.18.1.100', tha: '02:00:00:00:0f:01', tpa: '198.18.1.1' })
    .build();
  assert.equal(hex(f.buf, f.off, f.len), hex(want.buf, want.off, want.len));
  // Not Ethernet/IPv4: refused.
  f.buf[p.l3 + 5] = 16;
  assert.ok(!parseArp(f.buf, p.l3, p.end, a));
  assert.ok(!parseArp(f.buf, p.l3, p.l3 + 27, a));
});

test('gratuitous ARP', () => {
  const out = new Uint8Array(100);
  const n = buildGratuitousArp(out, 3, MY_MAC, 0, ip('198.18.1.100'));
  assert.equal(n, 52);
  const want = new PacketBuilder()
    .eth({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:01:02' })
    .arp({ op: 1, sha: '02:00:00:00:01:02', spa: '198.18.1.100', tpa: '198.18.1.100' })
    .build({ headroom: 0 });
  assert.equal(hex(out, 3, n), hex(want.buf, 0, want.len));
  assert.equal(buildGratuitousArp(new Uint8Array(51), 0, MY_MAC, 0, 1), -1);
});

test('ICMP echo reply in place', () => {
  const req = new PacketBuilder()
    .eth({ dst: '02:00:00:00:01:02', src: '02:00:00:00:0f:01' })
    .ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 63, id: 7 })
    .icmp({ type: 8, rest: (0x1234 << 16) | 5 })
    .payload([1, 2, 3, 4, 5, 6, 7])
    .build({ pad: 64 });
  assert.equal(parseFrame(req.buf, req.off, req.len, p, 0), Verdict.OK);
  const n = icmpEchoReplyInPlace(req.buf, p, 64);
  const want = new PacketBuilder()
    .eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' })
    .ipv4({ src: '198.18.1.100', dst: '198.18.0.2', ttl: 64, id: 7 })
    .icmp({ type: 0, rest: (0x1234 << 16) | 5 })
    .payload([1, 2, 3, 4, 5, 6, 7])
    .build();
  assert.equal(n, want.len);
  assert.equal(hex(req.buf, req.off, n), hex(want.buf, want.off, want.len));
  assert.equal(icmpEchoReplyInPlace(req.buf, p, 64), -1, 'already a reply');
});

const orig = () =>
  new PacketBuilder()
    .eth({ dst: '02:00:00:00:01:02', src: '02:00:00:00:0f:01' })
    .ipv4({ src: '198.18.0.2', dst: '198.18.2.11', ttl: 1, id: 0x99, df: true, tos: 0x10, options: [1, 1, 1, 1] })
    .udp({ sport: 5555, dport: 53 })
    .payload(new Array(100).fill(0xab));

test('ICMP errors: fragmentation needed, time exceeded, port unreachable', () => {
  const o = orig().build();
  assert.equal(parseFrame(o.buf, o.off, o.len, p, 0), Verdict.OK);
  assert.ok(icmpErrorAllowed(o.buf, p));
  const embedded = Array.from(o.buf.subarray(p.l3, p.l3 + 24 + 8));
  const out = new Uint8Array(200);
  let n = buildFragNeeded(out, 0, o.buf, p.l3, p.ipEnd, 1480, ip('198.18.1.2'), 42, PEER_MAC, 0, MY_MAC, 0);
  const check = (n: number, type: number, code: number, rest: number) => {
    const want = new PacketBuilder()
      .eth({ dst: '02:00:00:00:0f:01', src: '02:00:00:00:01:02' })
      .ipv4({ src: '198.18.1.2', dst: '198.18.0.2', ttl: 64, id: 42, tos: 0xd0 })
      .icmp({ type, code, rest })
      .payload(embedded)
      .build({ headroom: 0 });
    assert.equal(hex(out, 0, n), hex(want.buf, 0, want.len));
    const q = new ParsedFrame();
    assert.equal(parseFrame(out, 0, n, q, PARSE.VERIFY_L4), Verdict.OK);
    assert.ok(!icmpErrorAllowed(out, q), 'never an error about an error');
  };
  check(n, 3, 4, 1480);
  n = buildTimeExceeded(out, 0, o.buf, p.l3, p.ipEnd, ip('198.18.1.2'), 42, PEER_MAC, 0, MY_MAC, 0);
  check(n, 11, 0, 0);
  n = buildPortUnreachable(out, 0, o.buf, p.l3, p.ipEnd, ip('198.18.1.2'), 42, PEER_MAC, 0, MY_MAC, 0);
  check(n, 3, 3, 0);
  assert.equal(buildPortUnreachable(new Uint8Array(40), 0, o.buf, p.l3, p.ipEnd, 1, 1, PEER_MAC, 0, MY_MAC, 0), -1);
  assert.equal(buildPortUnreachable(out, 0, o.buf, p.l3, p.l3 + 10, 1, 1, PEER_MAC, 0, MY_MAC, 0), -1);
  // A short datagram embeds only what it has.
  const s = new PacketBuilder().eth().ipv4().udp({ sport: 1, dport: 2 }).build();
  const q = new ParsedFrame();
  parseFrame(s.buf, s.off, s.len, q, 0);
  assert.equal(buildPortUnreachable(out, 0, s.buf, q.l3, q.ipEnd, 1, 1, PEER_MAC, 0, MY_MAC, 0), 10 + 14 + 20 + 8 + 28);
});

test('no ICMP errors about broadcasts, fragments or bad sources', () => {
  const cases = [
    new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).ipv4().udp().build(),
    new PacketBuilder().eth().ipv4({ dst: '224.0.0.5' }).udp().build(),
    new PacketBuilder().eth().ipv4({ src: '0.0.0.0' }).udp().build(),
    new PacketBuilder().eth().ipv4({ src: '127.0.0.1' }).udp().build(),
    new PacketBuilder().eth().ipv4({ fragOff: 16, proto: 17 }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build(),
  ];
  for (const f of cases) {
    parseFrame(f.buf, f.off, f.len, p, 0);
    assert.ok(!icmpErrorAllowed(f.buf, p));
  }
});

test('ICMP error about a NAT conn: rewrite the embedded datagram, both checksums stay right', () => {
  // The RS (198.18.2.11:8053) replied to the client; a router says the client port is unreachable.
  // The director must show the client its VIP (198.18.1.100:53) as the embedded source.
  const inner = new PacketBuilder().eth().ipv4({ src: '198.18.2.11', dst: '198.18.0.2', ttl: 63 }).udp({ sport: 8053, dport: 5555 }).payload(new Array(30).fill(7)).build();
  const ip0 = new ParsedFrame();
  parseFrame(inner.buf, inner.off, inner.len, ip0, 0);
  const out = new Uint8Array(200);
  const n = buildPortUnreachable(out, 0, inner.buf, ip0.l3, ip0.ipEnd, ip('198.18.0.1'), 1, MY_MAC, 0, PEER_MAC, 0);
  assert.equal(parseFrame(out, 0, n, p, PARSE.VERIFY_L4), Verdict.OK);
  const ii = new IcmpInner();
  assert.ok(parseIcmpInner(out, p, ii));
  assert.equal(ii.proto, 17);
  assert.equal(ii.saddr, ip('198.18.2.11'));
  assert.equal(ii.daddr, ip('198.18.0.2'));
  assert.equal(ii.sport, 8053);
  assert.equal(ii.dport, 5555);
  icmpInnerSetSaddr(out, ii, ip('198.18.1.100'));
  icmpInnerSetSport(out, ii, 53);
  // The outer header is rewritten separately (it has no pseudo-header in the ICMP checksum).
  setDaddr(out, p.l3, p.l4, p.proto, ip('198.18.1.100'), false);
  // The same error built from the datagram as the client saw it is byte-identical.
  const seen = new PacketBuilder().eth().ipv4({ src: '198.18.1.100', dst: '198.18.0.2', ttl: 63 }).udp({ sport: 53, dport: 5555 }).payload(new Array(30).fill(7)).build();
  parseFrame(seen.buf, seen.off, seen.len, ip0, 0);
  const out2 = new Uint8Array(200);
  const n2 = buildPortUnreachable(out2, 0, seen.buf, ip0.l3, ip0.ipEnd, ip('198.18.0.1'), 1, MY_MAC, 0, PEER_MAC, 0);
  assert.equal(hex(out, 0, n), hex(out2, 0, n2));
  assert.equal(parseFrame(out, 0, n, p, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(ipv4ChecksumOk(out, ii.l3, ii.hdrLen));
  // And the other direction (daddr/dport) on a TCP inner.
  const t = new PacketBuilder().eth().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 4000, dport: 80 }).build();
  parseFrame(t.buf, t.off, t.len, ip0, 0);
  const m = buildFragNeeded(out, 0, t.buf, ip0.l3, ip0.ipEnd, 1400, ip('198.18.2.11'), 1, MY_MAC, 0, PEER_MAC, 0);
  parseFrame(out, 0, m, p, 0);
  assert.ok(parseIcmpInner(out, p, ii));
  icmpInnerSetDaddr(out, ii, ip('198.18.2.11'));
  icmpInnerSetDport(out, ii, 8080);
  assert.equal(parseFrame(out, 0, m, p, PARSE.VERIFY_L4), Verdict.OK);
  assert.ok(ipv4ChecksumOk(out, ii.l3, 20));
  assert.equal(ii.dport, 8080);
  assert.equal(refSum(out, p.l4, p.ipEnd), 0xffff);
  // Not an error message: refused.
  const echo = new PacketBuilder().eth().ipv4().icmp({ type: ICMP.ECHO }).payload(new Array(28).fill(0x45)).build();
  parseFrame(echo.buf, echo.off, echo.len, p, 0);
  assert.ok(!parseIcmpInner(echo.buf, p, ii));
});

test('IPIP encapsulation: outer header, DF and TOS from inner, vnet offsets shifted', () => {
  const f = new PacketBuilder()
    .eth({ dst: '02:00:00:00:01:02', src: '02:00:00:00:0f:01' })
    .ipv4({ src: '198.18.0.2', dst: '198.18.1.100', df: true, tos: 0x28 })
    .tcp({ sport: 1234, dport: 80 })
    .partialChecksum()
    .vnet({ hdrLen: 54, gsoType: 1, gsoSize: 1448 })
    .build();
  const orig = f.buf.slice();
  const n = ipipEncap(f.buf, f.off, f.len, ip('198.18.1.2'), ip('198.19.0.11'), 64, 0x777);
  assert.equal(n, f.off - 20);
  assert.equal(parseFrame(f.buf, n, f.len + 20, p, 0), Verdict.OK);
  assert.equal(p.proto, 4);
  assert.equal(p.saddr, ip('198.18.1.2'));
  assert.equal(p.daddr, ip('198.19.0.11'));
  assert.equal(p.ttl, 64);
  assert.equal(p.id, 0x777);
  assert.equal(p.tos, 0x28);
  assert.equal(p.totLen, f.len - 24 + 20);
  assert.equal(f.buf[p.l3 + 6], 0x40, 'DF copied');
  assert.equal(p.csumStart, 34 + 20);
  assert.equal(f.buf[n + 2], 54 + 20);
  assert.equal(hex(f.buf, n + 10, 14), hex(orig, f.off + 10, 14), 'Ethernet header moved');
  assert.equal(ipipDecap(f.buf, n, f.len + 20), f.off);
  assert.equal(hex(f.buf, f.off, f.len), hex(orig, f.off, f.len));
  // No headroom, not IPv4, not IPIP: refused, nothing changed.
  const g = new PacketBuilder().eth().ipv4().udp().build({ headroom: 19 });
  const before = hex(g.buf);
  assert.equal(ipipEncap(g.buf, g.off, g.len, 1, 2, 64, 0), -1);
  assert.equal(ipipDecap(g.buf, g.off, g.len), -1);
  const a = new PacketBuilder().eth().arp({ op: 1, sha: '02:00:00:00:00:01', spa: '1.1.1.1', tpa: '1.1.1.2' }).build();
  assert.equal(ipipEncap(a.buf, a.off, a.len, 1, 2, 64, 0), -1);
  assert.equal(hex(g.buf), before);
});

test('property: IPIP encap then decap gives back the frame byte for byte', () => {
  fc.assert(
    fc.property(
      fc.record({
        vlan: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
        df: fc.boolean(),
        tos: fc.integer({ min: 0, max: 255 }),
        payload: fc.uint8Array({ maxLength: 60 }),
        vflags: fc.integer({ min: 0, max: 3 }),
        hdrLen: fc.integer({ min: 0, max: 200 }),
        pad: fc.integer({ min: 0, max: 80 }),
        s: fc.integer({ min: 0, max: 0xffffffff }),
        d: fc.integer({ min: 0, max: 0xffffffff }),
        ttl: fc.integer({ min: 0, max: 255 }),
        id: fc.integer({ min: 0, max: 0xffff }),
      }),
      (r) => {
        const f = new PacketBuilder()
          .vnet({ flags: r.vflags, hdrLen: r.hdrLen, csumStart: 34, csumOffset: 6 })
          .eth({ vlan: r.vlan })
          .ipv4({ df: r.df, tos: r.tos })
          .udp()
          .payload(r.payload)
          .build({ pad: r.pad });
        const orig = f.buf.slice();
        const n = ipipEncap(f.buf, f.off, f.len, r.s, r.d, r.ttl, r.id);
        assert.equal(n, f.off - 20);
        assert.equal(parseFrame(f.buf, n, f.len + 20, p, 0) === Verdict.OK || (r.vflags & 1) === 1, true);
        assert.ok(ipv4ChecksumOk(f.buf, n + 10 + (r.vlan === undefined ? 14 : 18), 20));
        assert.equal(ipipDecap(f.buf, n, f.len + 20), f.off);
        assert.equal(hex(f.buf, f.off, f.len), hex(orig, f.off, f.len));
      },
    ),
    { numRuns: 1000 },
  );
});
