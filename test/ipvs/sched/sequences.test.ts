// Exact pick sequences per scheduler, each derived by hand from the kernel's algorithm (reasoning in the comments).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getScheduler, registerScheduler } from '../../../src/ipvs/sched/registry.ts';
import { setTwosRandom } from '../../../src/ipvs/sched/twos.ts';
import { shHashKey } from '../../../src/ipvs/sched/sh.ts';
import { SVC_F } from '../../../src/ipvs/types.ts';
import { addDest, build, delDest, makeDest, makeService, pick, pkt, setWeight } from './helpers.ts';

function picks(svc: Parameters<typeof pick>[0], n: number): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) out.push(pick(svc));
  return out;
}

test('registry: duplicate names throw, unknown names are undefined', () => {
  const rr = getScheduler('rr')!;
  assert.throws(() => registerScheduler(rr), /already registered/);
  assert.equal(getScheduler('nope'), undefined);
});

test('wrr: A:4 B:3 C:2 bound to a service that already has them gives A,A,B,A,B,C,A,B,C', () => {
  // init_service with dests present (a scheduler change on an edited service): di = gcd = 1,
  // mw = 4, cw = mw. cw=4: A. cw=3: A,B. cw=2: A,B,C. cw=1: A,B,C. cw<=0 wraps to 4.
  const svc = makeService('wrr');
  const specs = ['A', 'B', 'C'].map((name, i) => makeDest(svc, { name, weight: 4 - i }, i));
  svc.dests.push(...specs);
  svc.sched.init!(svc);
  const cycle = ['A', 'A', 'B', 'A', 'B', 'C', 'A', 'B', 'C'];
  assert.deepEqual(picks(svc, 18), [...cycle, ...cycle]);
});

test('wrr: dests added one by one leave cw at 1, so the first pass is A,B,C', () => {
  // The service starts empty: di = 1, mw = 0, cw = 0. Adding C:2 gives di = 2, mw = 1 and cw = 0
  // becomes mw = 1. Adding B:3 (di = 1, mw = 3) and A:4 (mw = 4) keep cw = 1 (not > mw, not 0,
  // di = 1). So the first pass runs at cw = 1 over A,B,C; then the full cycle from cw = 4.
  const { svc } = build('wrr', [
    { name: 'A', weight: 4 },
    { name: 'B', weight: 3 },
    { name: 'C', weight: 2 },
  ]);
  const cycle = ['A', 'A', 'B', 'A', 'B', 'C', 'A', 'B', 'C'];
  assert.deepEqual(picks(svc, 21), ['A', 'B', 'C', ...cycle, ...cycle]);
});

test('wrr: a weight edit resets to the head and keeps cw when di = 1', () => {
  // Built by adds, A:4 B:2 ends with di = 2, mw = 3 and cw = (1/2)*2 + 1 = 1. cw=1: A, B; wrap to
  // cw = 3: A; B misses, cw = 1: A. Now cw = 1, cl = A.
  // Edit B to 3: di = 1, mw = 4, cw = 1 is neither > mw nor 0 and di = 1, so cw stays 1; cl = head.
  // cw=1: A, B; cw=0 -> 4: A; cw=3: A, B; cw=2: A, B; cw=1: A, B; cw -> 4: A.
  const { svc, d } = build('wrr', [
    { name: 'A', weight: 4 },
    { name: 'B', weight: 2 },
  ]);
  assert.deepEqual(picks(svc, 4), ['A', 'B', 'A', 'A']);
  setWeight(svc, d.B!, 3);
  assert.deepEqual(picks(svc, 10), ['A', 'B', 'A', 'A', 'B', 'A', 'B', 'A', 'B', 'A']);
});

test('wrr: with di > 1 an edit realigns cw to (cw/di)*di + 1', () => {
  // Built by adds, A:6 B:4 ends with di = 2, mw = 5, cw = 1. cw=1: A, B; wrap to cw = 5: A;
  // cw = 3: A, B. Now cw = 3, cl = B.
  // Edit B to 3: di = 3, mw = 6 - 2 = 4; cw = 3 <= mw and di > 1, so cw = (3/3)*3 + 1 = 4.
  // From the head at cw=4: A (6 >= 4). B (3) misses, cw = 1: A, then B. Without the realignment
  // (cw = 3) the picks would be A, B instead of A, A.
  const { svc, d } = build('wrr', [
    { name: 'A', weight: 6 },
    { name: 'B', weight: 4 },
  ]);
  assert.deepEqual(picks(svc, 5), ['A', 'B', 'A', 'A', 'B']);
  setWeight(svc, d.B!, 3);
  assert.deepEqual(picks(svc, 3), ['A', 'A', 'B']);
});

test('wrr: all overloaded returns null and recovers', () => {
  const { svc, d } = build('wrr', [
    { name: 'A', weight: 2 },
    { name: 'B', weight: 1 },
  ]);
  assert.equal(pick(svc), 'A');
  d.A!.flags |= 2;
  d.B!.flags |= 2;
  assert.equal(pick(svc), null);
  d.B!.flags &= ~2;
  assert.equal(pick(svc), 'B');
});

test('rr: deleting the dest under the cursor moves the cursor to the previous entry', () => {
  // List A,B,C,D. Picks A, B: the cursor is on B. Deleting B puts the cursor on A, so the walk
  // continues with C (the entry after the deleted one), D, then wraps to A, C.
  const { svc, d } = build('rr', ['A', 'B', 'C', 'D'].map((name) => ({ name, weight: 1 })));
  assert.deepEqual(picks(svc, 2), ['A', 'B']);
  delDest(svc, d.B!);
  assert.deepEqual(picks(svc, 4), ['C', 'D', 'A', 'C']);
});

test('rr: deleting the first dest while under the cursor falls back to the head', () => {
  // List A,B,C. Pick A; delete A: its previous entry is the list head, so the next walk starts at B.
  const { svc, d } = build('rr', ['A', 'B', 'C'].map((name) => ({ name, weight: 1 })));
  assert.equal(pick(svc), 'A');
  delDest(svc, d.A!);
  assert.deepEqual(picks(svc, 3), ['B', 'C', 'B']);
});

test('rr: a dest added at the head does not move the cursor', () => {
  // List A,B; pick A. Adding C puts it at the head (C,A,B); the cursor stays on A: B, C, A, B.
  const { svc } = build('rr', ['A', 'B'].map((name) => ({ name, weight: 1 })));
  assert.equal(pick(svc), 'A');
  addDest(svc, makeDest(svc, { name: 'C', weight: 1 }, 5));
  assert.deepEqual(picks(svc, 4), ['B', 'C', 'A', 'B']);
});

test('rr: skips quiesced and overloaded dests, and may pick the cursor dest again', () => {
  // List A(w0), B, C(overloaded): only B is eligible; the walk from B wraps back to B itself.
  const { svc } = build('rr', [
    { name: 'A', weight: 0 },
    { name: 'B', weight: 1 },
    { name: 'C', weight: 1, overloaded: true },
  ]);
  assert.deepEqual(picks(svc, 3), ['B', 'B', 'B']);
});

test('lc: least active*256 + inactive, ties to the earliest in list order', () => {
  // D(w0) has no load but is quiesced. A: 1*256 = 256, B: 300, C: 256 -> A and C tie; A is earlier.
  const { svc, d } = build('lc', [
    { name: 'D', weight: 0 },
    { name: 'A', weight: 1, active: 1 },
    { name: 'B', weight: 9, inact: 300 },
    { name: 'C', weight: 1, inact: 256 },
  ]);
  assert.equal(pick(svc), 'A');
  // One inactive conn more on A makes C (256) strictly least.
  d.A!.inactConns = 1;
  assert.equal(pick(svc), 'C');
});

test('wlc: least overhead/weight by cross-multiplication, ties to the earliest', () => {
  // A: 512/1, B: 1024/2 = 512, C: 1280/3 ~ 427 -> C.
  const { svc, d } = build('wlc', [
    { name: 'A', weight: 1, active: 2 },
    { name: 'B', weight: 2, active: 4 },
    { name: 'C', weight: 3, active: 5 },
  ]);
  assert.equal(pick(svc), 'C');
  // C at weight 2: 1280/2 = 640. A and B tie at 512: 512*2 > 1024*1 is false, so A stays.
  d.C!.weight = 2;
  assert.equal(pick(svc), 'A');
  // Inactive conns count for wlc: B with 1 inactive more loses nothing to A (A still least).
  d.A!.inactConns = 1; // A: 513/1 > 1024/2 = 512 -> B
  assert.equal(pick(svc), 'B');
});

test('sed: (active + 1)/weight, inactive conns ignored', () => {
  // A: (0+1)/1 = 1; B: (2+1)/3 = 1 -> tie keeps A. wlc would also pick A here (0 < 512/3).
  const { svc, d } = build('sed', [
    { name: 'A', weight: 1, inact: 1000 },
    { name: 'B', weight: 3, active: 2 },
  ]);
  assert.equal(pick(svc), 'A');
  // B at weight 4: 3/4 < 1 -> B, although A has no active conns (wlc would keep A at 1000/1 < 512/4? no: 1000 > 128 -> B too).
  d.B!.weight = 4;
  assert.equal(pick(svc), 'B');
  // sed ignores inactive conns: A with 1000 inactive still scores (0+1)/1 against B at weight 3.
  d.B!.weight = 3;
  d.B!.activeConns = 3; // (3+1)/3 > 1 -> A
  assert.equal(pick(svc), 'A');
});

test('nq: the first idle dest wins outright, else sed', () => {
  // A is busy with the best ratio, B and C idle: B (first idle) is returned at once.
  const { svc, d } = build('nq', [
    { name: 'A', weight: 100, active: 1 },
    { name: 'B', weight: 1 },
    { name: 'C', weight: 1 },
  ]);
  assert.equal(pick(svc), 'B');
  // An idle but overloaded dest does not count.
  d.B!.flags |= 2;
  assert.equal(pick(svc), 'C');
  // Nobody idle: A (1+1)/100 beats C (1+1)/1.
  d.C!.activeConns = 1;
  assert.equal(pick(svc), 'A');
});

test('fo: highest weight, ties to the earliest, overloaded skipped', () => {
  const { svc, d } = build('fo', [
    { name: 'A', weight: 2 },
    { name: 'B', weight: 5 },
    { name: 'C', weight: 5 },
  ]);
  assert.deepEqual(picks(svc, 3), ['B', 'B', 'B']);
  d.B!.flags |= 2;
  assert.equal(pick(svc), 'C');
  d.C!.weight = 0;
  assert.equal(pick(svc), 'A');
});

test('ovf: highest weight while active <= weight, then overflow to the next', () => {
  // A:2 B:3 C:1. Binding each pick as an active conn: B takes conns while its active count is
  // 0..3 (4 picks), then A (0..2: 3 picks), then C (0..1: 2 picks), then nothing is left.
  const { svc } = build('ovf', [
    { name: 'A', weight: 2 },
    { name: 'B', weight: 3 },
    { name: 'C', weight: 1 },
  ]);
  const seq: (string | null)[] = [];
  for (let i = 0; i < 10; i++) {
    const r = svc.sched.schedule(svc, pkt());
    if (r) r.activeConns++;
    seq.push(r === null ? null : (r as unknown as { name: string }).name);
  }
  assert.deepEqual(seq, ['B', 'B', 'B', 'B', 'A', 'A', 'A', 'C', 'C', null]);
});

test('twos: weighted draws over [0, total] and the lower overhead/weight wins', () => {
  // A:1 B:2 C:3, total = 6 + 1 = 7. Draws r1 = 0, r2 = 5: A takes r1 to -1 (choice1 = A);
  // r2: 5-1 = 4, 4-2 = 2, 2-3 = -1 -> choice2 = C. A carries 1 active (256), C none:
  // 3*256 > 1*0, so C.
  const draws: number[] = [];
  setTwosRandom((bound) => {
    assert.equal(bound, 7);
    return draws.shift()!;
  });
  try {
    const { svc, d } = build('twos', [
      { name: 'A', weight: 1, active: 1 },
      { name: 'B', weight: 2 },
      { name: 'C', weight: 3 },
    ]);
    draws.push(0, 5);
    assert.equal(pick(svc), 'C');
    // r1 = 0 -> A, r2 = 2 -> B (2-1 = 1, 1-2 = -1). Both idle: 2*0 > 1*0 is false -> A.
    d.A!.activeConns = 0;
    draws.push(0, 2);
    assert.equal(pick(svc), 'A');
    // r1 = 6 (the top of the inclusive range) ends on C.
    draws.push(6, 6);
    assert.equal(pick(svc), 'C');
  } finally {
    setTwosRandom(null);
  }
});

test('dh: bucket i holds the (i mod n)-th dest, hash_32(daddr, 8), no fallback', () => {
  // hash_32(0, 8) = 0 -> bucket 0 -> A. hash_32(1, 8) = 0x61C88647 >> 24 = 97 -> 97 mod 3 = 1 -> B.
  // hash_32(2, 8) = 0xC3910C8E >> 24 = 195 -> 195 mod 3 = 0 -> A.
  const { svc, d } = build('dh', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 7 },
    { name: 'C', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, 0)), 'A');
  assert.equal(pick(svc, pkt(1, 1)), 'B');
  assert.equal(pick(svc, pkt(1, 2)), 'A');
  // B quiesced: its buckets return null (dh has no fallback); the table is not rebuilt on edits.
  setWeight(svc, d.B!, 0);
  assert.equal(pick(svc, pkt(1, 1)), null);
  assert.equal(pick(svc, pkt(1, 2)), 'A');
});

test('sh: weight-repeated buckets over the list, hash of the source address', () => {
  // A:2 B:1: buckets go A,A,B,A,A,B,... so bucket b holds A iff b mod 3 < 2.
  // saddr 0 -> bucket 0 -> A; saddr 1 -> hash_32(1, 8) = 97 -> 97 mod 3 = 1 -> A;
  // saddr 2 -> 195 -> 195 mod 3 = 0 -> A; ... saddr 5 -> (5*0x61C88647 mod 2^32) >> 24 = 0xE8 = 232
  // -> 232 mod 3 = 1 -> A; saddr 6 -> 0x4A = 74 -> 74 mod 3 = 2 -> B; saddr 8 -> 0x0E = 14 -> 2 -> B.
  const { svc } = build('sh', [
    { name: 'A', weight: 2 },
    { name: 'B', weight: 1 },
  ]);
  assert.deepEqual(
    [0, 1, 2, 5, 6, 7, 8].map((s) => pick(svc, pkt(s))),
    ['A', 'A', 'A', 'A', 'B', 'A', 'B'],
  );
  for (let s = 0; s < 2000; s++) {
    const b = shHashKey(s, 0, 0);
    assert.equal(pick(svc, pkt(s)), b % 3 < 2 ? 'A' : 'B');
  }
});

test('sh: sh-port hashes the client port too; without it the port is ignored', () => {
  const plain = build('sh', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  const seen = new Set<string | null>();
  for (let port = 1000; port < 1100; port++) seen.add(pick(plain.svc, pkt(5, 0, port)));
  assert.equal(seen.size, 1);
  const withPort = build('sh', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ], SVC_F.SCHED2);
  seen.clear();
  for (let port = 1000; port < 1100; port++) {
    const got = pick(withPort.svc, pkt(5, 0, port));
    // Buckets alternate A,B: the bucket of hash_32(port + saddr) decides.
    assert.equal(got, shHashKey(5, port, 0) % 2 === 0 ? 'A' : 'B');
    seen.add(got);
  }
  assert.equal(seen.size, 2);
});

test('sh: a quiesced dest gives null without sh-fallback and the next live bucket with it', () => {
  // A:1 B:1 alternate; quiescing A keeps the layout (weight 0 still takes one bucket). For a client
  // in an A bucket H (even), the fallback probes (offset + 2H) mod 256: offset 0 is even (A,
  // unavailable), offset 1 is odd (B).
  for (const flags of [0, SVC_F.SCHED1]) {
    const { svc, d } = build('sh', [
      { name: 'A', weight: 1 },
      { name: 'B', weight: 1 },
    ], flags);
    setWeight(svc, d.A!, 0);
    for (let s = 0; s < 500; s++) {
      const inA = shHashKey(s, 0, 0) % 2 === 0;
      assert.equal(pick(svc, pkt(s)), inA ? (flags ? 'B' : null) : 'B');
    }
  }
});
