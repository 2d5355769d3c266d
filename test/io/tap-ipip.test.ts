// Pure parts of the TAP/macvtap/IPIP ports: offload bits, frame sizing, and the IPIP decapsulation step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_OFFLOADS, GSO_MAX_FRAME, maxFrameFor, offloadBits, TUN_F } from '../../src/io/tap.ts';
import { DECAP, decapBurst, parseIPv4 } from '../../src/io/ipip.ts';
import { IoError } from '../../src/io/errors.ts';

test('offloadBits: defaults to CSUM|TSO4|TSO6|TSO_ECN, refuses TSO without CSUM', () => {
  assert.equal(offloadBits(undefined), 0x0f);
  assert.equal(offloadBits(true), DEFAULT_OFFLOADS);
  assert.equal(offloadBits(false), 0);
  assert.equal(offloadBits(TUN_F.CSUM), 1);
  assert.equal(offloadBits(0x6f), 0x6f);
  assert.throws(() => offloadBits(TUN_F.TSO4), (e: unknown) => e instanceof IoError && e.code === 'EINVAL');
  assert.throws(() => offloadBits(-1), IoError);
  assert.throws(() => offloadBits(1.5), IoError);
});

test('maxFrameFor: 64 KB GSO frames with TSO, wire-sized frames without', () => {
  assert.equal(maxFrameFor(DEFAULT_OFFLOADS, 1500), GSO_MAX_FRAME);
  assert.equal(GSO_MAX_FRAME, 10 + 18 + 65535);
  assert.equal(maxFrameFor(TUN_F.CSUM, 1500), 10 + 18 + 1500);
  assert.equal(maxFrameFor(0, 9000), 10 + 18 + 9000);
});

test('parseIPv4', () => {
  assert.equal(parseIPv4('198.18.1.100'), 0xc6120164);
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  for (const bad of ['198.18.1', '256.1.1.1', 'a.b.c.d', '1.2.3.4 ']) assert.throws(() => parseIPv4(bad), IoError);
});

function csum(b: Uint8Array, o: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[o + i]! << 8) | (b[o + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An IPv4 header (checksum filled) for protocol `proto` carrying `payloadLen` bytes. */
function ipv4(src: number, dst: number, proto: number, payloadLen: number, options = 0): Uint8Array {
  const hl = 20 + options;
  const h = new Uint8Array(hl);
  h[0] = 0x40 | (hl >> 2);
  const total = hl + payloadLen;
  h[2] = total >> 8;
  h[3] = total & 0xff;
  h[6] = 0x40; // DF
  h[8] = 64;
  h[9] = proto;
  new DataView(h.buffer).setUint32(12, src);
  new DataView(h.buffer).setUint32(16, dst);
  const c = csum(h, 0, hl);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  return h;
}

const VIP = parseIPv4('198.18.1.100');
const CIP = parseIPv4('198.18.0.2');
const DIP = parseIPv4('198.18.1.2');
const RIP = parseIPv4('198.18.1.11');

/** Inner UDP packet to `dst` (checksum 0: optional in UDP over IPv4) with `data`. */
function innerUdp(dst: number, data: Uint8Array): Uint8Array {
  const udp = new Uint8Array(8 + data.length);
  udp[0] = 0x1f;
  udp[1] = 0x40;
  udp[2] = 0x23;
  udp[3] = 0x28;
  udp[4] = udp.length >> 8;
  udp[5] = udp.length & 0xff;
  udp.set(data, 8);
  return concat(ipv4(CIP, dst, 17, udp.length), udp);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function encap(inner: Uint8Array, options = 0): Uint8Array {
  return concat(ipv4(DIP, RIP, 4, inner.length, options), inner);
}

/** Lays packets out in slots like the receive path does, runs decapBurst, returns what came out. */
function run(pkts: Uint8Array[], vips: number[] = [VIP]) {
  const slot = 2048;
  const buf = new Uint8Array(slot * pkts.length);
  const offsets = new Uint32Array(pkts.length);
  const lengths = new Uint32Array(pkts.length);
  pkts.forEach((p, i) => {
    offsets[i] = i * slot;
    lengths[i] = p.length;
    buf.set(p, i * slot);
  });
  const counters = new Float64Array(DECAP.COUNT);
  const good = decapBurst(buf, offsets, lengths, pkts.length, Uint32Array.from(vips), vips.length, counters);
  const out = pkts.map((_, i) => (lengths[i] ? buf.slice(offsets[i], offsets[i]! + lengths[i]!) : null));
  return { good, out, counters };
}

test('decapBurst: strips the outer header (with and without options), inner packet unchanged', () => {
  const inner = innerUdp(VIP, new TextEncoder().encode('hello through the tunnel'));
  const r = run([encap(inner), encap(inner, 8)]);
  assert.equal(r.good, 2);
  assert.deepEqual(r.out[0], inner);
  assert.deepEqual(r.out[1], inner);
  assert.equal(r.counters[DECAP.OK], 2);
});

test('decapBurst: trailing bytes past the inner total length are cut off', () => {
  const inner = innerUdp(VIP, new Uint8Array(10));
  const padded = concat(inner, new Uint8Array(6));
  const r = run([encap(padded)]);
  assert.deepEqual(r.out[0], inner);
});

test('decapBurst: malformed outer and inner headers and foreign destinations are dropped and counted', () => {
  const inner = innerUdp(VIP, new Uint8Array(32));
  const notIpip = concat(ipv4(DIP, RIP, 17, inner.length), inner);
  const badVersion = encap(inner);
  badVersion[0] = 0x65;
  const badIhl = encap(inner);
  badIhl[0] = 0x44;
  const outerTooLong = encap(inner);
  outerTooLong[3] = outerTooLong[3]! + 4; // total length past the received bytes
  const fragment = encap(inner);
  fragment[6] = 0x20; // MF
  const shortInner = encap(new Uint8Array([0x45, 0, 0, 20, 1, 2, 3, 4, 5]));
  const innerV6 = encap(inner.map((b, i) => (i === 0 ? 0x60 : b)));
  const innerBadSum = encap(inner.map((b, i) => (i === 10 ? b ^ 0xff : b)));
  const innerTooLong = encap(inner.map((b, i) => (i === 3 ? b + 1 : b)));
  const foreign = encap(innerUdp(parseIPv4('198.18.1.200'), new Uint8Array(4)));
  const runt = new Uint8Array(12);
  const r = run([notIpip, badVersion, badIhl, outerTooLong, fragment, shortInner, innerV6, innerBadSum, innerTooLong, foreign, runt, encap(inner)]);
  assert.equal(r.good, 1);
  assert.deepEqual(r.out.map((o) => o !== null), [false, false, false, false, false, false, false, false, false, false, false, true]);
  assert.equal(r.counters[DECAP.BAD_OUTER], 6);
  assert.equal(r.counters[DECAP.BAD_INNER], 4);
  assert.equal(r.counters[DECAP.NOT_VIP], 1);
  assert.equal(r.counters[DECAP.OK], 1);
});

test('decapBurst: with no VIP list every destination passes; several VIPs match', () => {
  const other = parseIPv4('198.18.1.101');
  const a = innerUdp(other, new Uint8Array(4));
  assert.equal(run([encap(a)], []).good, 1);
  assert.equal(run([encap(a)], [VIP, other]).good, 1);
  assert.equal(run([encap(a)], [VIP]).good, 0);
});

test('decapBurst property: arbitrary and truncated bytes never throw and never point outside the packet', () => {
  const inner = innerUdp(VIP, new Uint8Array(40));
  const good = encap(inner);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: good.length }).map((n) => good.slice(0, n)),
        fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, v]) => good.map((b, j) => (j === i ? v : b))),
      ),
      (pkt) => {
        const buf = new Uint8Array(256);
        buf.set(pkt);
        const offsets = Uint32Array.of(0);
        const lengths = Uint32Array.of(pkt.length);
        const counters = new Float64Array(DECAP.COUNT);
        const n = decapBurst(buf, offsets, lengths, 1, Uint32Array.of(VIP), 1, counters);
        assert.equal(counters.reduce((s, x) => s + x, 0), pkt.length === 0 ? 0 : 1);
        if (n === 1) {
          assert.ok(offsets[0]! + lengths[0]! <= pkt.length);
          assert.ok(lengths[0]! >= 20);
        } else assert.equal(lengths[0], 0);
      },
    ),
    { numRuns: 2000 },
  );
});
