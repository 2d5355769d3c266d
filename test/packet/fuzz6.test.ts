// Property tests: arbitrary, mutated or truncated IPv6 frames never make the parser, rewriters, ICMPv6, ND or ip6ip6 code throw or read past the frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  IcmpInner6,
  NdMessage,
  PF6,
  ParsedFrame6,
  VERDICT_COUNT,
  Verdict,
  buildPacketTooBig,
  frameSetDaddr6,
  frameSetDport6,
  frameSetSaddr6,
  frameSetSport6,
  icmp6EchoReplyInPlace,
  icmp6ErrorAllowed,
  icmp6InnerSetDaddr,
  icmp6InnerSetSport,
  ip6ip6Decap,
  ip6ip6Encap,
  parseFrame6,
  parseIcmp6Inner,
  parseNdisc,
} from '../../src/packet/index.ts';
import { PacketBuilder, ip6, ip6w, mutatedSeed } from './builder.ts';

const a = new ParsedFrame6();
const b = new ParsedFrame6();
const A1 = ip6w('2001:db8:2::11');
const A2 = ip6w('2001:db8::7');

function sameFields(x: ParsedFrame6, y: ParsedFrame6): void {
  const rel = new Set(['frame', 'end', 'eth', 'l3', 'l4', 'ipEnd', 'fragHdr']);
  for (const k of Object.keys(x) as Array<keyof ParsedFrame6>) {
    if (rel.has(k)) continue;
    if (k === 'saddr' || k === 'daddr') assert.deepEqual([...x[k]], [...y[k]], k);
    else assert.equal(x[k], y[k], k);
  }
  const r = (v: number, f: number) => (v === 0 ? 0 : v - f);
  for (const k of ['l3', 'l4', 'ipEnd', 'fragHdr'] as const) assert.equal(r(x[k], x.frame), r(y[k], y.frame), k);
}

/** Parses `bytes` at offset 47 of an exact-size buffer, and again followed by garbage: same answer; then runs every consumer. */
function check(bytes: Uint8Array, opts: number): Verdict {
  const exact = new Uint8Array(47 + bytes.length);
  exact.set(bytes, 47);
  const v = parseFrame6(exact, 47, bytes.length, a, opts);
  assert.ok(v >= 0 && v < VERDICT_COUNT);
  const padded = new Uint8Array(3 + bytes.length + 64).fill(0xa5);
  padded.set(bytes, 3);
  assert.equal(parseFrame6(padded, 3, bytes.length, b, opts), v, 'bytes past len changed the verdict');
  sameFields(a, b);
  if (v === Verdict.OK || v === Verdict.FRAGMENT) {
    assert.ok(a.ipEnd <= a.end && a.l4 <= a.ipEnd && a.l3 + 40 + a.extLen === a.l4);
    if (a.flags & PF6.L4) assert.ok(a.l4 + a.l4HdrLen <= a.ipEnd);
    icmp6ErrorAllowed(exact, a, 2);
    const out = new Uint8Array(1400);
    buildPacketTooBig(out, 0, exact, a.l3, a.ipEnd, 1280, A1, 0, exact, a.eth, exact, a.eth + 6);
    frameSetDaddr6(exact, a, A1, 0);
    frameSetDport6(exact, a, 8080);
    frameSetSaddr6(exact, a, A2, 0);
    frameSetSport6(exact, a, 1);
    const ii = new IcmpInner6();
    if (parseIcmp6Inner(exact, a, ii)) {
      assert.ok(ii.l4 <= ii.end);
      icmp6InnerSetDaddr(exact, ii, A1, 0);
      icmp6InnerSetSport(exact, ii, 2);
    }
    parseNdisc(exact, a, new NdMessage());
    icmp6EchoReplyInPlace(exact, a, 64);
  }
  assert.equal(exact.length, 47 + bytes.length);
  const d = ip6ip6Decap(exact, 47, bytes.length);
  if (d < 0) ip6ip6Encap(exact, 47, bytes.length, A1, 0, A2, 0);
  assert.equal(exact.length, 47 + bytes.length);
  return v;
}

const opts = fc.integer({ min: 0, max: 1 });
const HEAD = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];

test('property (IPv6): random bytes after an IPv6 Ethernet header never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 160 }), fc.uint8Array({ minLength: 10, maxLength: 10 }), opts, (body, vnet, o) => {
      const bytes = Uint8Array.from([...vnet, ...HEAD.slice(10), ...body]);
      if (bytes.length > 24) bytes[24] = (bytes[24]! & 0x0f) | 0x60; // mostly version 6
      check(bytes, o);
    }),
    { numRuns: 4000 },
  );
});

test('property (IPv6): fully random bytes never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), opts, (bytes, o) => void check(bytes, o)), { numRuns: 2000 });
});

const inner = (() => {
  const f = new PacketBuilder().eth().ipv6({ src: '2001:db8::2', dst: '2001:db8:1::100', ext: [{ type: 'dest' }] }).tcp().payload([1, 2, 3]).build();
  return Array.from(f.buf.subarray(f.off + 24, f.off + f.len));
})();
const seeds = [
  new PacketBuilder().eth().ipv6().udp().payload([1, 2, 3]).build(),
  new PacketBuilder().eth({ vlan: 5 }).ipv6({ ext: [{ type: 'hop' }, { type: 'routing', segmentsLeft: 1 }, { type: 'ah' }] }).tcp().payload([1, 2, 3]).build(),
  new PacketBuilder().eth().ipv6({ ext: [{ type: 'frag', more: true }] }).tcp().partialChecksum().build(),
  new PacketBuilder().eth().ipv6().icmp6({ type: 2, rest: 1280 }).payload(inner).build(),
  new PacketBuilder().eth().ipv6({ hopLimit: 255 }).icmp6({ type: 135 }).payload([...ip6('2001:db8::1'), 1, 1, 2, 0, 0, 0, 0, 1]).build(),
  new PacketBuilder().eth().ipv6({ nextHeader: 41 }).payload(inner).build(),
  new PacketBuilder().eth().ipv6().icmp6({ type: 128, rest: 0x10001 }).payload([5, 5]).build(),
].map((f) => f.buf.slice(f.off, f.off + f.len));

test('property (IPv6): mutated and truncated valid frames never throw', () => {
  fc.assert(fc.property(mutatedSeed(fc, seeds), opts, (bytes, o) => void check(bytes, o)), { numRuns: 4000 });
});

test('every IPv6 seed parses as expected before mutation', () => {
  const want = [Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK];
  seeds.forEach((s, i) => assert.equal(check(s, 1), want[i], `seed ${i}`));
});
