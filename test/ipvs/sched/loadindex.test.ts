// Property tests: the indexed least-load schedulers (and their list-walk fallback) choose exactly what a plain kernel-style walk chooses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { inPacket, newTuple, type PacketTuple } from '../../../src/ipvs/core.ts';
import { Ipvs, type ServiceKey } from '../../../src/ipvs/service.ts';
import { usableIndex } from '../../../src/ipvs/sched/loadindex.ts';
import { setTwosRandom } from '../../../src/ipvs/sched/twos.ts';
import { DEST_F, Fwd, type Dest, type Fwd as FwdT, type Service } from '../../../src/ipvs/types.ts';
import { addDest, delDest, makeDest, makeService, type DestSpec, type NamedDest } from './helpers.ts';

// ------------------------------------------------------------------ reference walks (from ip_vs_*.c)

const ovl = (d: Dest): boolean => (d.flags & DEST_F.OVERLOAD) !== 0;
const lcOh = (d: Dest): number => d.activeConns * 256 + d.inactConns;

/** lc: skip overloaded and weight 0; the first dest with the strictly smallest overhead. */
function refLc(ds: readonly Dest[]): Dest | null {
  let best: Dest | null = null;
  for (const d of ds) {
    if (ovl(d) || d.weight === 0) continue;
    if (best === null || lcOh(d) < lcOh(best)) best = d;
  }
  return best;
}

/**
 * wlc and sed: the first non-overloaded dest with weight > 0 seeds the search; after it only
 * overloaded dests are skipped and a dest wins when loh * w(dest) > doh * w(least). BigInt, as the
 * kernel's 64-bit products.
 */
function refWeighted(ds: readonly Dest[], oh: (d: Dest) => number): Dest | null {
  let i = 0;
  while (i < ds.length && (ovl(ds[i]!) || ds[i]!.weight <= 0)) i++;
  if (i === ds.length) return null;
  let least = ds[i]!;
  for (i++; i < ds.length; i++) {
    const d = ds[i]!;
    if (ovl(d)) continue;
    if (BigInt(oh(least)) * BigInt(d.weight) > BigInt(oh(d)) * BigInt(least.weight)) least = d;
  }
  return least;
}

/** nq: the first eligible idle dest at once; else the sed comparison over eligible dests only. */
function refNq(ds: readonly Dest[]): Dest | null {
  let least: Dest | null = null;
  for (const d of ds) {
    if (ovl(d) || d.weight === 0) continue;
    if (d.activeConns === 0) return d;
    if (least === null || BigInt(least.activeConns + 1) * BigInt(d.weight) > BigInt(d.activeConns + 1) * BigInt(least.weight)) least = d;
  }
  return least;
}

/** fo: the first non-overloaded dest of strictly highest weight (weight 0 never beats 0). */
function refFo(ds: readonly Dest[]): Dest | null {
  let best: Dest | null = null;
  let hw = 0;
  for (const d of ds) {
    if (!ovl(d) && d.weight > hw) {
      best = d;
      hw = d.weight;
    }
  }
  return best;
}

/** ovf: like fo among dests that are not overloaded, have weight > 0 and active <= weight. */
function refOvf(ds: readonly Dest[]): Dest | null {
  let best: Dest | null = null;
  for (const d of ds) {
    if (ovl(d) || d.activeConns > d.weight || d.weight === 0) continue;
    if (best === null || d.weight > best.weight) best = d;
  }
  return best;
}

/**
 * twos: sum the weights of eligible dests, draw r1, r2 below sum + 1, walk subtracting weights and
 * take the first dest where each draw drops to 0 or below; keep choice1 unless
 * w2 * oh1 > w1 * oh2.
 */
function refTwos(ds: readonly Dest[], draw: (bound: number) => number): Dest | null {
  const ok = ds.filter((d) => !ovl(d) && d.weight > 0);
  if (ok.length === 0) return null;
  const total = ok.reduce((s, d) => s + d.weight, 0) + 1;
  const r = [draw(total), draw(total)];
  const pickAt = (x: number): Dest | null => {
    for (const d of ok) {
      x -= d.weight;
      if (x <= 0) return d;
    }
    return null;
  };
  const c1 = pickAt(r[0]!);
  const c2 = pickAt(r[1]!);
  const w1 = c1 === null ? -1 : c1.weight;
  const oh1 = c1 === null ? 0 : lcOh(c1);
  if (c2 !== null && BigInt(c2.weight) * BigInt(oh1) > BigInt(w1) * BigInt(lcOh(c2))) return c2;
  return c1 ?? ok[ok.length - 1]!;
}

type Ref = (ds: readonly Dest[], draw: (bound: number) => number) => Dest | null;
const REFS: Record<string, Ref> = {
  lc: refLc,
  wlc: (ds) => refWeighted(ds, lcOh),
  sed: (ds) => refWeighted(ds, (d) => d.activeConns + 1),
  nq: refNq,
  fo: refFo,
  ovf: refOvf,
  twos: refTwos,
};

// ------------------------------------------------------------------ model

/** A plain-object dest (not tracked): the schedulers must walk the list for it. */
function plainDest(svc: Service, spec: DestSpec, id: number): NamedDest {
  return {
    name: spec.name,
    id,
    addr: (0xc6120200 + id) >>> 0,
    port: 80,
    fwd: 3 as FwdT,
    weight: spec.weight,
    lastWeight: spec.weight,
    uThreshold: 0,
    lThreshold: 0,
    flags: DEST_F.AVAILABLE | (spec.overloaded ? DEST_F.OVERLOAD : 0),
    activeConns: spec.active ?? 0,
    inactConns: spec.inact ?? 0,
    persistConns: 0,
    svc,
  };
}

// Small ranges make ties (the tie-breaking is what the index must get right); some large values test
// the products.
const weightArb = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 65535 }));
const countArb = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1 << 20 }));
const specArb = fc.record({ weight: weightArb, active: countArb, inact: countArb, overloaded: fc.boolean() });
const opArb = fc.oneof(
  fc.record({ k: fc.constant('weight' as const), i: fc.nat(), v: weightArb }),
  fc.record({ k: fc.constant('active' as const), i: fc.nat(), v: countArb }),
  fc.record({ k: fc.constant('inact' as const), i: fc.nat(), v: countArb }),
  fc.record({ k: fc.constant('bind' as const), i: fc.nat(), active: fc.boolean() }),
  fc.record({ k: fc.constant('flip' as const), i: fc.nat() }),
  fc.record({ k: fc.constant('add' as const), spec: specArb }),
  fc.record({ k: fc.constant('del' as const), i: fc.nat() }),
);
// Draws for twos as fractions of the bound (the scheduler and the reference get the same ones).
const drawsArb = fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }));

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function apply(svc: Service, op: Op, make: (spec: DestSpec) => Dest): void {
  const ds = svc.dests;
  if (op.k === 'add') {
    addDest(svc, make({ name: '', ...op.spec }));
    return;
  }
  if (ds.length === 0) return;
  const d = ds[op.i % ds.length]!;
  switch (op.k) {
    case 'weight':
      d.weight = op.v;
      svc.sched.updDest?.(svc, d);
      break;
    case 'active':
      d.activeConns = op.v;
      break;
    case 'inact':
      d.inactConns = op.v;
      break;
    case 'bind':
      if (op.active) d.activeConns++;
      else d.inactConns++;
      break;
    case 'flip':
      d.flags ^= DEST_F.OVERLOAD;
      break;
    case 'del':
      delDest(svc, d);
      break;
  }
}

for (const name of Object.keys(REFS)) {
  test(`${name}: indexed and walking picks equal the kernel's list walk over random dests and changes`, () => {
    const ref = REFS[name]!;
    fc.assert(
      fc.property(fc.array(specArb, { maxLength: 40 }), fc.array(fc.tuple(opArb, drawsArb), { maxLength: 60 }), (init, ops) => {
        let nextId = 1;
        const tracked = makeService(name);
        const plain = makeService(name);
        const makeT = (s: DestSpec): Dest => makeDest(tracked, s, nextId++);
        const makeP = (s: DestSpec): Dest => plainDest(plain, s, nextId++);
        for (let i = init.length - 1; i >= 0; i--) {
          const s = { name: String(i), ...init[i]! };
          addDest(tracked, makeT(s));
          addDest(plain, makeP(s));
        }
        const check = (draws: [number, number]): void => {
          assert.ok(usableIndex(tracked) !== null, 'tracked dests must be answered by the index');
          if (plain.dests.length > 0) assert.equal(usableIndex(plain), null, 'plain dests must be walked');
          for (const svc of [tracked, plain]) {
            let q = 0;
            const draw = (bound: number): number => Math.floor(draws[q++ % 2]! * bound);
            setTwosRandom(draw);
            const got = svc.sched.schedule(svc, { proto: 6, saddr: 1, sport: 1, daddr: 2, dport: 80 });
            q = 0;
            const want = ref(svc.dests, draw);
            assert.equal(got === null ? -1 : svc.dests.indexOf(got), want === null ? -1 : svc.dests.indexOf(want));
          }
        };
        try {
          check([0, 0.999]);
          for (const [op, draws] of ops) {
            apply(tracked, op, makeT);
            apply(plain, op, makeP);
            check(draws);
          }
        } finally {
          setTwosRandom(null);
        }
      }),
      { numRuns: 300 },
    );
  });
}

test('twos: draws at 0 and at the total pick the first and the last eligible dest', () => {
  const svc = makeService('twos');
  const specs: DestSpec[] = [
    { name: 'A', weight: 0 },
    { name: 'B', weight: 2, active: 1 },
    { name: 'C', weight: 3, overloaded: true },
    { name: 'D', weight: 1, active: 1 },
    { name: 'E', weight: 0 },
  ];
  for (let i = specs.length - 1; i >= 0; i--) addDest(svc, makeDest(svc, specs[i]!, i));
  const names = (): string => {
    const d = svc.sched.schedule(svc, { proto: 6, saddr: 1, sport: 1, daddr: 2, dport: 80 });
    return d === null ? 'null' : (d as NamedDest).name;
  };
  try {
    // total = 3: draws lie in [0, 3]. B: oh 256, w 2; D: oh 256, w 1. B per weight is less loaded.
    setTwosRandom(() => 0);
    assert.equal(names(), 'B');
    setTwosRandom(() => 3);
    assert.equal(names(), 'D');
    let k = 0;
    setTwosRandom(() => (k++ % 2 === 0 ? 3 : 0)); // choice1 D, choice2 B: 2 * 256 > 1 * 256 -> B
    assert.equal(names(), 'B');
  } finally {
    setTwosRandom(null);
  }
});

test('a director service keeps its index current through binds, TCP state changes and expiry', () => {
  const ipvs = new Ipvs({ connCapacity: 4096, statsSlots: 256, seed: 3 });
  ipvs.tick(0);
  const VIP = 0xc6120164;
  const names = ['lc', 'wlc', 'sed', 'nq', 'fo', 'ovf'];
  const keys: ServiceKey[] = names.map((_, i) => ({ proto: 6, addr: VIP, port: 80 + i }));
  names.forEach((sched, i) => {
    ipvs.addService({ ...keys[i]!, sched });
    for (let r = 0; r < 12; r++) {
      ipvs.addDest(keys[i]!, { addr: 0xc6120200 + r, port: 80, fwd: Fwd.Masq, weight: 1 + (r % 4), uThreshold: r === 5 ? 6 : 0 });
    }
  });
  const t: PacketTuple = newTuple();
  const send = (port: number, client: number, flags: number): void => {
    t.proto = 6; t.saddr = 0xc6120000 + client; t.sport = 10000 + client; t.daddr = VIP; t.dport = port;
    t.tcpFlags = flags; t.len = 60; t.fwmark = 0;
    inPacket(ipvs, t);
  };
  for (let step = 0; step < 600; step++) {
    const i = step % names.length;
    const svc = ipvs.getService(keys[i]!)!;
    assert.ok(usableIndex(svc) !== null, 'director dests are TrackedDests');
    const want = REFS[names[i]!]!(svc.dests, () => 0);
    assert.equal(svc.sched.schedule(svc, t) === want, true, `${names[i]} at step ${step}`);
    // A SYN opens a conn (inactive), an ACK establishes it (active), an RST closes it (inactive).
    send(80 + i, step, 0x02);
    if (step % 3 !== 0) send(80 + i, step, 0x10);
    if (step % 5 === 0) send(80 + i, step, 0x04);
    if (step === 300) ipvs.tick(100_000); // SYN_RECV and CLOSE conns expire, established ones stay
    if (step === 200) ipvs.editDest(keys[0]!, { addr: 0xc6120203, port: 80, fwd: Fwd.Masq, weight: 9 });
    if (step === 250) ipvs.delDest(keys[1]!, 0xc6120204, 80);
  }
  // The walk above must have seen counters move both ways, or it proved nothing.
  const all = keys.flatMap((k) => ipvs.getService(k)!.dests);
  assert.ok(all.some((d) => d.activeConns > 0) && all.some((d) => d.inactConns > 0), 'counters moved both ways');
});
