// Property tests: arbitrary, mutated or truncated bytes never make the parser or the rewriters throw or read past the frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ArpPacket,
  IcmpInner,
  PF,
  ParsedFrame,
  VERDICT_COUNT,
  Verdict,
  completePartialChecksum,
  frameSetDaddr,
  frameSetDport,
  frameSetSaddr,
  frameSetSport,
  icmpInnerSetDaddr,
  icmpInnerSetSport,
  ipipDecap,
  ipipEncap,
  parseArp,
  parseFrame,
  parseIcmpInner,
} from '../../src/packet/index.ts';
import { PacketBuilder, mutatedSeed } from './builder.ts';

const a = new ParsedFrame();
const b = new ParsedFrame();

function sameFields(x: ParsedFrame, y: ParsedFrame): void {
  for (const k of Object.keys(x) as Array<keyof ParsedFrame>) {
    if (k === 'frame' || k === 'end' || k === 'eth' || k === 'l3' || k === 'l4' || k === 'ipEnd') continue;
    assert.equal(x[k], y[k], k);
  }
  // Offsets left at 0 were never set; set ones must sit at the same place relative to the frame.
  const rel = (v: number, f: number) => (v === 0 ? 0 : v - f);
  assert.equal(rel(x.l3, x.frame), rel(y.l3, y.frame));
  assert.equal(rel(x.l4, x.frame), rel(y.l4, y.frame));
  assert.equal(rel(x.ipEnd, x.frame), rel(y.ipEnd, y.frame));
}

/** Parses `bytes` placed at offset 7 of an exact-size buffer and again followed by garbage: same answer. */
function check(bytes: Uint8Array, opts: number): Verdict {
  const exact = new Uint8Array(7 + bytes.length);
  exact.set(bytes, 7);
  const v = parseFrame(exact, 7, bytes.length, a, opts);
  assert.ok(v >= 0 && v < VERDICT_COUNT);
  const padded = new Uint8Array(3 + bytes.length + 64).fill(0xa5);
  padded.set(bytes, 3);
  assert.equal(parseFrame(padded, 3, bytes.length, b, opts), v, 'bytes past len changed the verdict');
  sameFields(a, b);
  if (v === Verdict.OK) {
    assert.ok(a.ipEnd <= a.end && a.l4 <= a.ipEnd && a.l3 + a.ipHdrLen === a.l4);
    if (a.flags & PF.L4) assert.ok(a.l4 + a.l4HdrLen <= a.ipEnd || a.proto === 1);
    // Rewriters on whatever parsed stay inside the frame.
    frameSetDaddr(exact, a, 0xc6120b0b);
    frameSetDport(exact, a, 8080);
    frameSetSaddr(exact, a, 0xc6120101);
    frameSetSport(exact, a, 1);
    assert.equal(exact.length, 7 + bytes.length);
    const ii = new IcmpInner();
    if (parseIcmpInner(exact, a, ii)) {
      assert.ok(ii.l4 <= ii.end);
      icmpInnerSetDaddr(exact, ii, 1);
      icmpInnerSetSport(exact, ii, 2);
    }
  } else if (v === Verdict.ARP) {
    parseArp(exact, a.l3, a.end, new ArpPacket());
  }
  completePartialChecksum(exact, 7, bytes.length);
  ipipDecap(exact, 7, bytes.length);
  ipipEncap(exact, 7, bytes.length, 1, 2, 64, 3);
  return v;
}

const opts = fc.integer({ min: 0, max: 3 });

test('property: random bytes never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), opts, (bytes, o) => void check(bytes, o)), { numRuns: 5000 });
});

const seeds = [
  new PacketBuilder().eth().ipv4().udp().payload([1, 2, 3]).build(),
  new PacketBuilder().eth({ vlan: 5 }).ipv4({ options: [1, 1, 1, 1] }).tcp().payload([1, 2, 3]).build(),
  new PacketBuilder().eth().ipv4().tcp().partialChecksum().build(),
  new PacketBuilder().eth().ipv4().icmp({ type: 3, code: 3 }).payload(new PacketBuilder().eth().ipv4().udp().build().buf.slice(64 + 24, 64 + 24 + 28)).build(),
  new PacketBuilder().eth().arp({ op: 1, sha: '02:00:00:00:00:01', spa: '1.1.1.1', tpa: '1.1.1.2' }).build(),
  new PacketBuilder().eth().ipv4({ proto: 4 }).payload(new PacketBuilder().eth().ipv4().udp().build().buf.slice(64 + 24)).build(),
].map((f) => f.buf.slice(f.off, f.off + f.len));

test('property: mutated and truncated valid frames never throw', () => {
  fc.assert(fc.property(mutatedSeed(fc, seeds), opts, (bytes, o) => void check(bytes, o)), { numRuns: 5000 });
});

test('every seed frame parses as expected before mutation', () => {
  const want = [Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK, Verdict.ARP, Verdict.OK];
  seeds.forEach((s, i) => assert.equal(check(s, 1), want[i]));
});
