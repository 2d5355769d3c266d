// IPv6 checksums and NAT rewrites: golden rewrites against independently built frames, and properties that incremental updates (complete and partial) equal recomputation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PARSE,
  PF6,
  ParsedFrame6,
  Verdict,
  addr6Diff,
  completePartialChecksum,
  csumApplyDiff,
  frameSetDaddr6,
  frameSetDport6,
  frameSetSaddr6,
  frameSetSport6,
  ipv6DecHopLimit,
  l4Checksum6,
  l4ChecksumOk6,
  l4PartialSeed6,
  parseFrame6,
  pseudoSum6,
  setDaddr6,
} from '../../src/packet/index.ts';
import { PacketBuilder, hex, ip6, ip6w, refSum, type ExtSpec } from './builder.ts';

const p = new ParsedFrame6();
const CIP = '2001:db8::2';
const VIP = '2001:db8:1::100';
const RIP = '2001:db8:2::11';

test('pseudo-header sum: addresses, 32-bit length and next header (RFC 8200 §8.1), by hand', () => {
  const b = new Uint8Array(32);
  b.set(ip6('2001:db8::1'), 0);
  b.set(ip6('ff02::1:ff00:1'), 16);
  // 0x2001 + 0x0db8 + 1 + 0xff02 + 1 + 0xff00 + 1 + 0x10000 (length hi 1, lo 0) + 58
  const want = 0x2001 + 0x0db8 + 1 + 0xff02 + 1 + 0xff00 + 1 + 1 + 0 + 58;
  assert.equal(pseudoSum6(b, 0, 16, 58, 0x10000), want);
});

test('NAT golden: VIP:80 -> RIP:8080 then back, TCP behind extension headers, equal to frames built from scratch', () => {
  const ext: ExtSpec[] = [{ type: 'hop' }, { type: 'dest' }];
  const pay = [1, 2, 3, 4, 5, 6, 7];
  const f = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, ext }).tcp({ sport: 40000, dport: 80 }).payload(pay).build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
  frameSetDaddr6(f.buf, p, ip6w(RIP), 0);
  frameSetDport6(f.buf, p, 8080);
  const want = new PacketBuilder().eth().ipv6({ src: CIP, dst: RIP, ext }).tcp({ sport: 40000, dport: 8080 }).payload(pay).build();
  assert.equal(hex(f.buf, f.off, f.len), hex(want.buf, want.off, want.len));
  // The reply: RIP:8080 -> CIP becomes VIP:80 -> CIP (UDP this time, in a second frame).
  const r = new PacketBuilder().eth().ipv6({ src: RIP, dst: CIP }).udp({ sport: 8080, dport: 40000 }).payload(pay).build();
  assert.equal(parseFrame6(r.buf, r.off, r.len, p, PARSE.VERIFY_L4), Verdict.OK);
  frameSetSaddr6(r.buf, p, ip6w(VIP), 0);
  frameSetSport6(r.buf, p, 80);
  const rw = new PacketBuilder().eth().ipv6({ src: VIP, dst: CIP }).udp({ sport: 80, dport: 40000 }).payload(pay).build();
  assert.equal(hex(r.buf, r.off, r.len), hex(rw.buf, rw.off, rw.len));
  assert.deepEqual([...p.saddr], [...ip6w(VIP)]);
});

test('NAT golden, partial checksums: the seed follows the address, not the port (as docs/DEVELOPING.md for IPv4)', () => {
  const f = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP, ext: [{ type: 'dest' }] }).tcp({ sport: 40000, dport: 80 }).payload([9, 8, 7]).partialChecksum().build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
  assert.ok(p.flags & PF6.CSUM_PARTIAL);
  frameSetDaddr6(f.buf, p, ip6w(RIP), 0);
  frameSetDport6(f.buf, p, 8080);
  const want = new PacketBuilder().eth().ipv6({ src: CIP, dst: RIP, ext: [{ type: 'dest' }] }).tcp({ sport: 40000, dport: 8080 }).payload([9, 8, 7]).partialChecksum().build();
  assert.equal(hex(f.buf, f.off, f.len), hex(want.buf, want.off, want.len));
});

test('ICMPv6 checksums cover the addresses: a rewrite updates them (unlike ICMP for IPv4)', () => {
  const f = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).icmp6({ type: 128, rest: 0x10001 }).payload([1, 2, 3]).build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
  frameSetDaddr6(f.buf, p, ip6w(RIP), 0);
  const want = new PacketBuilder().eth().ipv6({ src: CIP, dst: RIP }).icmp6({ type: 128, rest: 0x10001 }).payload([1, 2, 3]).build();
  assert.equal(hex(f.buf, f.off, f.len), hex(want.buf, want.off, want.len));
});

test('UDP checksum 0 stays 0; a non-first fragment has only its address changed', () => {
  const u = new PacketBuilder().eth().ipv6().udp({ zeroChecksum: true }).build();
  assert.equal(parseFrame6(u.buf, u.off, u.len, p, 0), Verdict.OK);
  frameSetDaddr6(u.buf, p, ip6w(RIP), 0);
  assert.equal((u.buf[p.l4 + 6]! << 8) | u.buf[p.l4 + 7]!, 0);
  const f = new PacketBuilder().eth().ipv6({ ext: [{ type: 'frag', offset: 8 }] }).payload([0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]).build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.FRAGMENT);
  const before = f.buf.slice(p.l4, p.ipEnd);
  frameSetDaddr6(f.buf, p, ip6w(RIP), 0);
  frameSetDport6(f.buf, p, 1);
  assert.deepEqual(f.buf.slice(p.l4, p.ipEnd), before);
  assert.equal(hex(f.buf, p.l3 + 24, 16), Buffer.from(ip6(RIP)).toString('hex'));
});

test('hop limit decrement stops at 1', () => {
  const f = new PacketBuilder().eth().ipv6({ hopLimit: 2 }).tcp().build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
  assert.equal(ipv6DecHopLimit(f.buf, p.l3), 1);
  assert.equal(ipv6DecHopLimit(f.buf, p.l3), 0);
  assert.equal(f.buf[p.l3 + 7], 1);
});

// Properties: random frames (TCP/UDP/ICMPv6, any extension headers, VLAN or not), random 128-bit rewrites.
const u16 = fc.integer({ min: 0, max: 0xffff });
const addr = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const extArb = fc.array(
  fc.oneof(
    fc.constant<ExtSpec>({ type: 'dest' }),
    fc.record({ type: fc.constant('dest' as const), units: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ type: fc.constant('routing' as const), units: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ type: fc.constant('ah' as const), len: fc.integer({ min: 1, max: 6 }).map((x) => x * 2) }),
  ),
  { maxLength: 4 },
);
const frameArb = fc.record({
  l4: fc.constantFrom('tcp', 'udp', 'icmp6'),
  src: addr,
  dst: addr,
  sport: u16,
  dport: u16,
  hop: fc.boolean(),
  ext: extArb,
  vlan: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  payload: fc.uint8Array({ maxLength: 61 }),
});
const rewriteArb = fc.record({ daddr: addr, saddr: addr, dport: u16, sport: u16, which: fc.integer({ min: 1, max: 15 }) });
type FrameSpec = typeof frameArb extends fc.Arbitrary<infer T> ? T : never;

function build(s: FrameSpec, partial: boolean) {
  const ext: ExtSpec[] = s.hop ? [{ type: 'hop' }, ...s.ext] : s.ext;
  const b = new PacketBuilder().eth({ vlan: s.vlan }).ipv6({ src: s.src, dst: s.dst, ext }).payload(s.payload);
  if (s.l4 === 'tcp') b.tcp({ sport: s.sport, dport: s.dport });
  else if (s.l4 === 'udp') b.udp({ sport: s.sport, dport: s.dport });
  else b.icmp6({ type: 128, rest: s.sport << 16 });
  if (partial) b.partialChecksum();
  return b.build();
}
function rewrite(buf: Uint8Array, r: { daddr: string; saddr: string; dport: number; sport: number; which: number }) {
  if (r.which & 1) frameSetDaddr6(buf, p, ip6w(r.daddr), 0);
  if (r.which & 2) frameSetDport6(buf, p, r.dport);
  if (r.which & 4) frameSetSaddr6(buf, p, ip6w(r.saddr), 0);
  if (r.which & 8) frameSetSport6(buf, p, r.sport);
}
const csumAt = () => p.l4 + (p.proto === 6 ? 16 : p.proto === 17 ? 6 : 2);
const field = (buf: Uint8Array) => (buf[csumAt()]! << 8) | buf[csumAt() + 1]!;
/** The full checksum by the test's own code. */
function refL4(buf: Uint8Array): number {
  const w = (i: number) => (buf[i]! << 8) | buf[i + 1]!;
  let pseudo = p.proto + (p.ipEnd - p.l4);
  for (let i = 0; i < 32; i += 2) pseudo += w(p.l3 + 8 + i);
  const c = ~refSum(buf, p.l4, p.ipEnd, pseudo + (~field(buf) & 0xffff)) & 0xffff;
  return c === 0 && p.proto === 17 ? 0xffff : c;
}

test('property: incremental rewrites of complete IPv6 checksums equal full recomputation', () => {
  fc.assert(
    fc.property(frameArb, rewriteArb, (s, r) => {
      const f = build(s, false);
      assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
      rewrite(f.buf, r);
      assert.equal(field(f.buf), refL4(f.buf));
      assert.equal(field(f.buf), l4Checksum6(f.buf, p.l3, p.l4, p.ipEnd, p.proto));
      assert.equal(parseFrame6(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
      assert.ok(p.flags & PF6.L4_VERIFIED);
      if (r.which & 1) assert.deepEqual([...p.daddr], [...ip6w(r.daddr)]);
    }),
    { numRuns: 2000 },
  );
});

test('property: partial-checksum rewrites keep the seed equal to the new pseudo-header, and finish to a verifying checksum', () => {
  fc.assert(
    fc.property(frameArb, rewriteArb, (s, r) => {
      const f = build(s, true);
      assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
      assert.ok(p.flags & PF6.CSUM_PARTIAL);
      rewrite(f.buf, r);
      // One's-complement zero has two forms; compare what they stand for.
      const norm = (x: number) => (x === 0xffff ? 0 : x);
      assert.equal(norm(field(f.buf)), norm(l4PartialSeed6(f.buf, p.l3, p.l4, p.ipEnd, p.proto)));
      const want = refL4(f.buf);
      assert.ok(completePartialChecksum(f.buf, f.off, f.len));
      const got = field(f.buf);
      assert.equal(got === 0xffff && want === 0 ? 0 : got, want);
      assert.ok(l4ChecksumOk6(f.buf, p.l3, p.l4, p.ipEnd, p.proto));
    }),
    { numRuns: 2000 },
  );
});

test('property: addr6Diff + csumApplyDiff on any 16 bytes equals the sum recomputed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), addr, (bytes, a) => {
      const b = Uint8Array.from(bytes);
      const c0 = ~refSum(b) & 0xffff;
      const w = ip6w(a);
      const c1 = csumApplyDiff(c0, addr6Diff(b, 8, w, 0));
      b.set(ip6(a), 8);
      const want = ~refSum(b) & 0xffff;
      // Both zeros verify: compare the folded sums.
      assert.equal(c1 === 0xffff ? 0 : c1, want === 0xffff ? 0 : want);
    }),
    { numRuns: 2000 },
  );
});

test('setDaddr6 with a complete-checksum formula on a partial frame would be wrong (the rule matters)', () => {
  const f = new PacketBuilder().eth().ipv6({ src: CIP, dst: VIP }).tcp().partialChecksum().build();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
  setDaddr6(f.buf, p.l3, p.l4, 6, ip6w(RIP), 0, false);
  completePartialChecksum(f.buf, f.off, f.len);
  assert.ok(!l4ChecksumOk6(f.buf, p.l3, p.l4, p.ipEnd, 6));
});
