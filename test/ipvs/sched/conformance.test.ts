// One conformance suite run against every registered scheduler: quiesced, overloaded, empty, shares, dests removed and added.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedulerNames } from '../../../src/ipvs/sched/registry.ts';
import { DEST_F, type Service } from '../../../src/ipvs/types.ts';
import { addDest, build, delDest, makeDest, pick, pkt, xorshift, type NamedDest } from './helpers.ts';

const ALL = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos'];

/** Schedules `n` new conns from spread client and destination addresses, binding each as an active conn. */
function run(svc: Service, n: number, seed: number, bind: boolean): Map<string | null, number> {
  const rnd = xorshift(seed);
  const counts = new Map<string | null, number>();
  for (let i = 0; i < n; i++) {
    const d = svc.sched.schedule(svc, pkt(rnd(), rnd(), 1024 + (rnd() % 60000)));
    if (d !== null) {
      assert.ok(svc.dests.includes(d), 'scheduled a dest that is not in the service');
      if (bind) d.activeConns++;
    }
    const k = d === null ? null : (d as NamedDest).name;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** Expected shares for weights A:3, B:1 where the algorithm promises them, with an absolute tolerance. */
const SHARES: Record<string, { a: number; tol: number } | undefined> = {
  rr: { a: 0.5, tol: 0 }, // weights ignored, strict alternation
  wrr: { a: 0.75, tol: 0 }, // exactly 3 of every 4
  lc: { a: 0.5, tol: 0.001 }, // weights ignored, least conns alternate
  wlc: { a: 0.75, tol: 0.002 },
  sed: { a: 0.75, tol: 0.002 },
  nq: { a: 0.75, tol: 0.002 },
  lblc: { a: 0.75, tol: 0.002 }, // every destination address new: wlc
  lblcr: { a: 0.75, tol: 0.002 },
  twos: { a: 0.75, tol: 0.05 },
  dh: { a: 0.5, tol: 0.03 }, // one bucket per dest whatever the weight
  sh: { a: 0.75, tol: 0.03 }, // 192 of 256 buckets
  mh: { a: 0.75, tol: 0.03 }, // 3 slots per round against 1
  fo: undefined, // all to the highest weight: see the exact tests
  ovf: undefined, // fills by weight then overflows: see the exact tests
};

test('the registry holds all fourteen kernel schedulers', () => {
  assert.deepEqual([...schedulerNames()].sort(), [...ALL].sort());
});

for (const name of schedulerNames()) {
  test(`${name}: empty pool gives null`, () => {
    const { svc } = build(name, []);
    for (let i = 0; i < 50; i++) assert.equal(pick(svc, pkt(i * 7919, i * 104729)), null);
  });

  test(`${name}: weight 0 is never chosen`, () => {
    const { svc } = build(name, [
      { name: 'A', weight: 0 },
      { name: 'B', weight: 1 },
      { name: 'C', weight: 0 },
    ]);
    const c = run(svc, 2000, 11, false);
    assert.equal(c.get('A'), undefined);
    assert.equal(c.get('C'), undefined);
    assert.ok((c.get('B') ?? 0) > 0, 'the only live dest was never chosen');
  });

  test(`${name}: overloaded dests are skipped`, () => {
    const { svc } = build(name, [
      { name: 'A', weight: 5, overloaded: true },
      { name: 'B', weight: 1 },
      { name: 'C', weight: 1 },
    ]);
    const c = run(svc, 2000, 12, false);
    assert.equal(c.get('A'), undefined);
    assert.ok((c.get('B') ?? 0) + (c.get('C') ?? 0) > 0);
  });

  test(`${name}: all quiesced or all overloaded gives null`, () => {
    const q = build(name, [
      { name: 'A', weight: 0 },
      { name: 'B', weight: 0 },
    ]);
    assert.deepEqual([...run(q.svc, 500, 13, false)], [[null, 500]]);
    const o = build(name, [
      { name: 'A', weight: 2, overloaded: true },
      { name: 'B', weight: 1, overloaded: true },
    ]);
    assert.deepEqual([...run(o.svc, 500, 14, false)], [[null, 500]]);
  });

  const share = SHARES[name];
  if (share) {
    test(`${name}: weighted shares over many picks`, () => {
      const { svc } = build(name, [
        { name: 'A', weight: 3 },
        { name: 'B', weight: 1 },
      ]);
      const n = 4000;
      const c = run(svc, n, 15, true);
      assert.equal(c.get(null), undefined, 'no pick may fail with live dests');
      const a = (c.get('A') ?? 0) / n;
      assert.ok(Math.abs(a - share.a) <= share.tol, `A share ${a}, expected ${share.a} ± ${share.tol}`);
    });
  }

  test(`${name}: a dest removed mid-cycle is never chosen again`, () => {
    const { svc, d } = build(name, [
      { name: 'A', weight: 2 },
      { name: 'B', weight: 2 },
      { name: 'C', weight: 2 },
    ]);
    run(svc, 7, 16, false);
    delDest(svc, d.B!);
    const c = run(svc, 1000, 17, false);
    assert.equal(c.get('B'), undefined);
    assert.equal(c.get(null), undefined, 'live dests remain, so every pick succeeds');
    assert.ok((c.get('A') ?? 0) + (c.get('C') ?? 0) === 1000);
  });

  test(`${name}: a dest added mid-cycle takes conns`, () => {
    const { svc } = build(name, [
      { name: 'A', weight: 1 },
      { name: 'B', weight: 1 },
    ]);
    run(svc, 5, 18, false);
    const c3 = makeDest(svc, { name: 'C', weight: 2 }, 7);
    addDest(svc, c3);
    const c = run(svc, 1000, 19, false);
    assert.ok((c.get('C') ?? 0) > 0, 'the new dest was never chosen');
    assert.equal(c.get(null), undefined);
  });

  test(`${name}: dests become eligible again as soon as OVERLOAD clears`, () => {
    // The threshold logic clears the flag without any scheduler hook: no state may hide the dests.
    const { svc, d } = build(name, [
      { name: 'A', weight: 1, overloaded: true },
      { name: 'B', weight: 1, overloaded: true },
    ]);
    assert.equal(pick(svc), null);
    d.A!.flags &= ~DEST_F.OVERLOAD;
    d.B!.flags &= ~DEST_F.OVERLOAD;
    const c = run(svc, 500, 20, false);
    assert.equal(c.get(null), undefined);
  });
}
