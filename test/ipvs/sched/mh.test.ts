// Maglev (mh): the kernel's hsiphash, table identity across instances, bounded disruption, quiesce, fallback and port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hsiphash32 } from '../../../src/ipvs/sched/siphash.ts';
import { MH_TAB_SIZE, mhSlot, mhTable } from '../../../src/ipvs/sched/mh.ts';
import { SVC_F } from '../../../src/ipvs/types.ts';
import { build, delDest, pick, pkt, setWeight, xorshift } from './helpers.ts';

test('hsiphash32 matches the kernel self-test vector (64-bit hsiphash_1u32)', () => {
  // lib/test_siphash.c: key 00..0f, hsiphash_1u32(0x03020100) == test_vectors_hsiphash[4].
  const key = { k0hi: 0x07060504, k0lo: 0x03020100, k1hi: 0x0f0e0d0c, k1lo: 0x0b0a0908 };
  assert.equal(hsiphash32(key, 0x03020100), 0x88d38328);
});

function specs(n: number, weight = 1) {
  return Array.from({ length: n }, (_, i) => ({ name: `D${i}`, weight, addr: (0xc6120100 + 11 + i) >>> 0 }));
}

test('mh: two independent instances with the same dests build identical tables', () => {
  const a = build('mh', specs(7));
  const b = build('mh', specs(7));
  const ta = mhTable(a.svc).map((d) => (d as unknown as { name: string } | null)?.name);
  const tb = mhTable(b.svc).map((d) => (d as unknown as { name: string } | null)?.name);
  assert.equal(ta.length, MH_TAB_SIZE);
  assert.ok(ta.every((x) => x !== undefined));
  assert.deepEqual(ta, tb);
});

test('mh: every slot is filled and equal weights share slots evenly', () => {
  const { svc } = build('mh', specs(5));
  const counts = new Map<string, number>();
  for (const d of mhTable(svc)) counts.set((d as unknown as { name: string }).name, (counts.get((d as unknown as { name: string }).name) ?? 0) + 1);
  // Equal turns: slots are claimed one per dest per round, so shares differ by at most one.
  const v = [...counts.values()];
  assert.equal(v.reduce((a, b) => a + b, 0), MH_TAB_SIZE);
  assert.ok(Math.max(...v) - Math.min(...v) <= 1, `uneven: ${v}`);
});

test('mh: removing one of N dests moves about 1/N of the slots', () => {
  for (const n of [5, 10, 20]) {
    const { svc, d } = build('mh', specs(n));
    const before = mhTable(svc);
    const gone = d[`D${n >> 1}`]!;
    const owned = before.filter((x) => x === gone).length;
    delDest(svc, gone);
    const after = mhTable(svc);
    let moved = 0;
    for (let i = 0; i < MH_TAB_SIZE; i++) if (before[i] !== gone && before[i] !== after[i]) moved++;
    assert.ok(after.every((x) => x !== gone));
    // Slots of surviving dests that changed owner: Maglev keeps this small (≤ 1.5/N of the table).
    assert.ok(moved <= (1.5 / n) * MH_TAB_SIZE, `n=${n}: ${moved} surviving slots moved (owned ${owned})`);
  }
});

test('mh: quiescing keeps the table (last_weight), the quiesced slots give null, fallback finds another', () => {
  const { svc, d } = build('mh', specs(4, 2));
  const before = mhTable(svc);
  setWeight(svc, d.D1!, 0);
  assert.deepEqual(mhTable(svc), before);
  const rnd = xorshift(7);
  let hitQuiesced = 0;
  for (let i = 0; i < 3000; i++) {
    const s = rnd();
    const owner = before[mhSlot(s, 0)] as unknown as { name: string };
    const got = pick(svc, pkt(s));
    if (owner.name === 'D1') {
      hitQuiesced++;
      assert.equal(got, null);
    } else assert.equal(got, owner.name);
  }
  assert.ok(hitQuiesced > 0);
  svc.flags |= SVC_F.SCHED1;
  for (let i = 0; i < 3000; i++) {
    const got = pick(svc, pkt(rnd()));
    assert.ok(got !== null && got !== 'D1');
  }
});

test('mh: weights follow gcd and shift: 3:1 gives 3 slots per round against 1', () => {
  const { svc } = build('mh', [
    { name: 'A', weight: 30 },
    { name: 'B', weight: 10 },
  ]);
  // gcd 10 -> turns 3 and 1; fls(3) - 6 < 0 so no shift. Rounds of 4 slots: 3069 vs 1024.
  const t = mhTable(svc);
  const a = t.filter((x) => (x as unknown as { name: string }).name === 'A').length;
  assert.equal(a, 3 * 1023 + 0 + Math.min(3, MH_TAB_SIZE - 4 * 1023));
});

test('mh: mh-port spreads one client address over dests; without it the port is ignored', () => {
  const plain = build('mh', specs(4));
  const seen = new Set<string | null>();
  for (let p = 1000; p < 1200; p++) seen.add(pick(plain.svc, pkt(0xc6120002, 0, p)));
  assert.equal(seen.size, 1);
  const ported = build('mh', specs(4), SVC_F.SCHED2);
  const table = mhTable(ported.svc);
  seen.clear();
  for (let p = 1000; p < 1200; p++) {
    const got = pick(ported.svc, pkt(0xc6120002, 0, p));
    assert.equal(got, (table[mhSlot(0xc6120002, p)] as unknown as { name: string }).name);
    seen.add(got);
  }
  assert.ok(seen.size > 1);
});
