// Checksums: known vectors, and property tests that incremental updates (complete and partial) equal recomputation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PF,
  PARSE,
  ParsedFrame,
  Verdict,
  completePartialChecksum,
  csumReplace16,
  frameSetDaddr,
  frameSetDport,
  frameSetSaddr,
  frameSetSport,
  ipv4ChecksumOk,
  ipv4DecTtl,
  ipv4HeaderChecksum,
  l4ChecksumOk,
  parseFrame,
  setDaddr,
  sum16,
} from '../../src/packet/index.ts';
import { PacketBuilder, refSum } from './builder.ts';

test('IPv4 header checksum: known vector', () => {
  // A widely published example header: checksum 0xb861.
  const h = Uint8Array.from([0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
  assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
  assert.ok(ipv4ChecksumOk(h, 0, 20));
  h[10] = 0;
  assert.ok(!ipv4ChecksumOk(h, 0, 20));
});

test('sum16: odd lengths pad with zero; long ranges do not overflow', () => {
  assert.equal(sum16(Uint8Array.from([0x01, 0x02, 0x03]), 0, 3, 0), 0x0102 + 0x0300);
  const big = new Uint8Array(70000).fill(0xff);
  assert.equal(sum16(big, 0, big.length, 0), refSum(big));
  const r = new Uint8Array(65537);
  for (let i = 0; i < r.length; i++) r[i] = (i * 131 + 7) & 0xff;
  assert.equal(sum16(r, 1, r.length, 0x12345), refSum(r, 1, r.length, 0x12345));
});

test('sum16 (property): any alignment of the view and the range, any length, any carried sum equals the byte-wise reference', () => {
  const arb = fc.record({
    pad: fc.integer({ min: 0, max: 7 }),
    data: fc.uint8Array({ minLength: 0, maxLength: 3000 }),
    a: fc.nat(),
    b: fc.nat(),
    sum: fc.integer({ min: 0, max: 0x7fffffff }),
  });
  fc.assert(
    fc.property(arb, ({ pad, data, a, b, sum }) => {
      // The frame sits at an arbitrary offset inside a bigger buffer, as frames do in the arena.
      const host = new Uint8Array(pad + data.length + 5);
      host.set(data, pad);
      const view = host.subarray(pad, pad + data.length);
      const start = data.length ? a % (data.length + 1) : 0;
      const end = start + (data.length - start ? b % (data.length - start + 1) : 0);
      assert.equal(sum16(view, start, end, sum), refSum(view, start, end, sum));
    }),
    { numRuns: 3000 },
  );
  // GSO-sized ranges at every alignment.
  const host = new Uint8Array(70011);
  for (let i = 0; i < host.length; i++) host[i] = (i * 193 + 11) & 0xff;
  for (let pad = 0; pad < 4; pad++) {
    const view = host.subarray(pad);
    for (const start of [0, 1, 2, 3]) assert.equal(sum16(view, start, 65536 + start + pad, 7), refSum(view, start, 65536 + start + pad, 7));
  }
});

test('RFC 1624: the 0xffff/0x0000 case is handled the way a recomputation handles it', () => {
  // m = 0x0000 -> m' = 0xffff changes nothing in one's complement arithmetic.
  assert.equal(csumReplace16(0xdd2f, 0x0000, 0xffff), 0xdd2f);
  assert.equal(csumReplace16(0x0000, 0x5555, 0x5555), 0x0000);
});

const p = new ParsedFrame();
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipStr = (v: number) => `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;

const frameArb = fc.record({
  tcp: fc.boolean(),
  saddr: u32,
  daddr: u32,
  sport: u16,
  dport: u16,
  vlan: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  options: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 41 }),
  zeroUdp: fc.boolean(),
  ttl: fc.integer({ min: 0, max: 255 }),
});
const rewriteArb = fc.record({ daddr: u32, dport: u16, saddr: u32, sport: u16, which: fc.integer({ min: 1, max: 15 }) });

type FrameSpec = { tcp: boolean; saddr: number; daddr: number; sport: number; dport: number; vlan: number | undefined; options: boolean; payload: Uint8Array; zeroUdp: boolean; ttl: number };
function build(s: FrameSpec, partial: boolean) {
  const b = new PacketBuilder()
    .eth({ vlan: s.vlan })
    .ipv4({ src: ipStr(s.saddr), dst: ipStr(s.daddr), ttl: s.ttl, options: s.options ? [1, 1, 1, 0] : [] })
    .payload(s.payload);
  if (s.tcp) b.tcp({ sport: s.sport, dport: s.dport });
  else b.udp({ sport: s.sport, dport: s.dport, zeroChecksum: s.zeroUdp && !partial });
  if (partial) b.partialChecksum();
  return b.build();
}

function rewrite(buf: Uint8Array, r: { daddr: number; dport: number; saddr: number; sport: number; which: number }) {
  if (r.which & 1) frameSetDaddr(buf, p, r.daddr);
  if (r.which & 2) frameSetDport(buf, p, r.dport);
  if (r.which & 4) frameSetSaddr(buf, p, r.saddr);
  if (r.which & 8) frameSetSport(buf, p, r.sport);
}

/** Full L4 checksum of the parsed segment computed by the test's own code. */
function refL4(buf: Uint8Array): number {
  const l3 = p.l3;
  const w = (i: number) => (buf[i]! << 8) | buf[i + 1]!;
  const pseudo = w(l3 + 12) + w(l3 + 14) + w(l3 + 16) + w(l3 + 18) + p.proto + (p.ipEnd - p.l4);
  const at = p.l4 + (p.proto === 6 ? 16 : 6);
  const field = w(at);
  const c = ~refSum(buf, p.l4, p.ipEnd, pseudo + (~field & 0xffff)) & 0xffff;
  return c === 0 && p.proto === 17 ? 0xffff : c;
}
const field = (buf: Uint8Array) => {
  const at = p.l4 + (p.proto === 6 ? 16 : 6);
  return (buf[at]! << 8) | buf[at + 1]!;
};

test('property: incremental rewrites of complete checksums equal full recomputation', () => {
  fc.assert(
    fc.property(frameArb, rewriteArb, (s, r) => {
      const f = build(s, false);
      assert.equal(parseFrame(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
      rewrite(f.buf, r);
      assert.ok(ipv4ChecksumOk(f.buf, p.l3, p.ipHdrLen), 'IP header checksum');
      assert.equal((f.buf[p.l3 + 10]! << 8) | f.buf[p.l3 + 11]!, ipv4HeaderChecksum(f.buf, p.l3, p.ipHdrLen));
      if (!s.tcp && s.zeroUdp) assert.equal(field(f.buf), 0, 'UDP 0 stays 0');
      else assert.equal(field(f.buf), refL4(f.buf), 'L4 checksum');
      // The rewritten frame parses and verifies with the new fields.
      assert.equal(parseFrame(f.buf, f.off, f.len, p, PARSE.VERIFY_L4), Verdict.OK);
      if (r.which & 1) assert.equal(p.daddr, r.daddr);
      if (r.which & 2) assert.equal(p.dport, r.dport);
    }),
    { numRuns: 3000 },
  );
});

/** Finishes the partial checksum like skb_checksum_help and compares with a from-scratch checksum. */
test('property: partial-checksum rewrites, finished like skb_checksum_help, equal a from-scratch checksum', () => {
  fc.assert(
    fc.property(frameArb, rewriteArb, (s, r) => {
      const f = build(s, true);
      assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.OK);
      assert.ok(p.flags & PF.CSUM_PARTIAL);
      rewrite(f.buf, r);
      const l3 = p.l3;
      assert.ok(ipv4ChecksumOk(f.buf, l3, p.ipHdrLen));
      const want = refL4(f.buf);
      assert.ok(completePartialChecksum(f.buf, f.off, f.len));
      assert.equal(f.buf[f.off]! & 1, 0, 'NEEDS_CSUM cleared');
      const got = field(f.buf);
      // skb_checksum_help writes 0xffff for a computed 0 whatever the protocol; both verify.
      assert.equal(got === 0xffff && want === 0 ? 0 : got, want);
      assert.ok(l4ChecksumOk(f.buf, l3, p.l4, p.ipEnd, p.proto));
    }),
    { numRuns: 3000 },
  );
});

test('the partial rule matters: the complete formula on a partial frame gives a wrong checksum', () => {
  const f = new PacketBuilder().eth().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 1, dport: 80 }).partialChecksum().build();
  assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.OK);
  setDaddr(f.buf, p.l3, p.l4, 6, 0xc6120b0b, false); // wrong: treats the seed as complete
  completePartialChecksum(f.buf, f.off, f.len);
  assert.ok(!l4ChecksumOk(f.buf, p.l3, p.l4, p.ipEnd, 6));
});

test('TTL decrement keeps the header checksum and stops at 1', () => {
  fc.assert(
    fc.property(frameArb, (s) => {
      const f = build(s, false);
      assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.OK);
      const t = ipv4DecTtl(f.buf, p.l3);
      if (s.ttl <= 1) {
        assert.equal(t, 0);
        assert.equal(f.buf[p.l3 + 8], s.ttl);
      } else {
        assert.equal(t, s.ttl - 1);
        assert.equal(f.buf[p.l3 + 8], s.ttl - 1);
      }
      assert.ok(ipv4ChecksumOk(f.buf, p.l3, p.ipHdrLen));
      assert.equal((f.buf[p.l3 + 10]! << 8) | f.buf[p.l3 + 11]!, ipv4HeaderChecksum(f.buf, p.l3, p.ipHdrLen));
    }),
    { numRuns: 500 },
  );
});

test('non-first fragments: only the IP header changes', () => {
  const f = new PacketBuilder().eth().ipv4({ fragOff: 8, proto: 17 }).payload([0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]).build();
  assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.FRAGMENT);
  const before = f.buf.slice(p.l4, p.ipEnd);
  frameSetDaddr(f.buf, p, 0xc6120201);
  frameSetDport(f.buf, p, 8080);
  assert.deepEqual(f.buf.slice(p.l4, p.ipEnd), before);
  assert.ok(ipv4ChecksumOk(f.buf, p.l3, 20));
});
