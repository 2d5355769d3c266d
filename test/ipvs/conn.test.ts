// The conn table: index vs a Map model, timer wheel expiry, overflow, and correctness at 1M conns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONN_F, ConnTable } from '../../src/ipvs/conn.ts';

type Key = string;
const inKey = (p: number, a: number, ap: number, b: number, bp: number): Key => `${p}/${a}:${ap}/${b}:${bp}`;

test('index agrees with a Map model under random insert / delete / expire', () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('add' as const), c: fc.integer({ min: 0, max: 40 }), p: fc.integer({ min: 1, max: 6 }), nat: fc.boolean(), ttl: fc.integer({ min: 1, max: 30 }) }),
    fc.record({ k: fc.constant('del' as const), n: fc.nat() }),
    fc.record({ k: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 5000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), fc.integer(), (ops, seed) => {
      // Small index so probe chains wrap and backward shifts happen often.
      const t = new ConnTable(64, { seed, tickMs: 100, wheelSlots: 16 });
      const model = new Map<number, { inK: Key; outK: Key | null; exp: number }>();
      let now = 0;
      t.tick(now);
      for (const o of ops) {
        if (o.k === 'add') {
          const caddr = 0xc6120000 + o.c;
          const i = t.alloc(6, caddr, 1000 + o.p, 0xc6120164, 80, 0xc612020b, 8080, o.nat ? 0 : 3, 0);
          if (i < 0) {
            assert.equal(model.size, 64);
            continue;
          }
          t.hash(i, o.nat);
          t.timeout[i] = o.ttl;
          t.arm(i);
          model.set(i, { inK: inKey(6, caddr, 1000 + o.p, 0xc6120164, 80), outK: o.nat ? inKey(6, 0xc612020b, 8080, caddr, 1000 + o.p) : null, exp: now + o.ttl * 1000 });
        } else if (o.k === 'del') {
          const ids = [...model.keys()];
          if (ids.length === 0) continue;
          const i = ids[o.n % ids.length]!;
          t.free(i);
          model.delete(i);
        } else {
          now += o.dt;
          const expired: number[] = [];
          t.onExpire = (i) => {
            expired.push(i);
            t.free(i);
          };
          t.tick(now);
          for (const i of expired) {
            const m = model.get(i)!;
            assert.ok(m.exp <= now, 'expired early');
            model.delete(i);
          }
          // Nothing overdue by more than one tick remains.
          for (const m of model.values()) assert.ok(m.exp > now - 100, 'missed expiry');
        }
        assert.equal(t.count, model.size);
        // Every model key is found (the first match may be an older duplicate: same key, any holder is fine).
        for (const [i, m] of model) {
          const [p, a, b] = m.inK.split('/');
          const [ca, cp] = a!.split(':').map(Number);
          const [va, vp] = b!.split(':').map(Number);
          const got = t.lookupIn(Number(p), ca!, cp!, va!, vp!);
          assert.ok(got >= 0 && model.get(got)?.inK === m.inK, `in key of ${i}`);
          if (m.outK) {
            const got2 = t.lookupOut(6, 0xc612020b, 8080, ca!, cp!);
            assert.ok(got2 >= 0 && model.get(got2)?.outK === m.outK, `out key of ${i}`);
          }
        }
        // And keys not in the model are not found.
        for (let c = 0; c <= 40; c++) for (let p = 1; p <= 6; p++) {
          const k = inKey(6, 0xc6120000 + c, 1000 + p, 0xc6120164, 80);
          const want = [...model.values()].some((m) => m.inK === k);
          assert.equal(t.lookupIn(6, 0xc6120000 + c, 1000 + p, 0xc6120164, 80) >= 0, want);
        }
      }
    }),
    { numRuns: 150 },
  );
});

test('templates and conns have separate key spaces', () => {
  const t = new ConnTable(8, { seed: 3 });
  const a = t.alloc(6, 10, 0, 20, 80, 30, 80, CONN_F.TEMPLATE, 0);
  t.hash(a, false);
  assert.equal(t.lookupIn(6, 10, 0, 20, 80), -1);
  assert.equal(t.lookupTemplate(6, 10, 20, 80), a);
});

test('full table: alloc refuses and counts, never throws', () => {
  const t = new ConnTable(3, { seed: 1 });
  for (let i = 0; i < 3; i++) assert.ok(t.alloc(6, i, 1, 2, 3, 4, 5, 0, 0) >= 0);
  assert.equal(t.alloc(6, 9, 1, 2, 3, 4, 5, 0, 0), -1);
  assert.equal(t.alloc(6, 9, 1, 2, 3, 4, 5, 0, 0), -1);
  assert.equal(t.overflow, 2);
  t.free(1);
  assert.ok(t.alloc(6, 9, 1, 2, 3, 4, 5, 0, 0) >= 0);
});

test('timer wheel: lazy extension, shortening, long timeouts beyond one revolution', () => {
  const t = new ConnTable(8, { seed: 1, tickMs: 100, wheelSlots: 8 });
  const gone: number[] = [];
  t.onExpire = (i) => {
    gone.push(i);
    t.free(i);
  };
  t.tick(1000);
  const a = t.alloc(6, 1, 1, 2, 2, 3, 3, 0, 0);
  const b = t.alloc(6, 2, 1, 2, 2, 3, 3, 0, 0);
  const c = t.alloc(6, 3, 1, 2, 2, 3, 3, 0, 0);
  t.timeout[a] = 2; t.arm(a); // 3000
  t.timeout[b] = 900; t.arm(b); // far beyond 8 slots × 100 ms
  t.timeout[c] = 900; t.arm(c);
  t.tick(2500);
  t.timeout[a] = 2; t.arm(a); // pushed to 4500
  t.timeout[c] = 1; t.arm(c); // shortened to 3500
  t.tick(3400);
  assert.deepEqual(gone, []);
  t.tick(3600);
  assert.deepEqual(gone, [c]);
  t.tick(4400);
  assert.deepEqual(gone, [c]);
  t.tick(4600);
  assert.deepEqual(gone, [c, a]);
  t.tick(900_900);
  assert.deepEqual(gone, [c, a]);
  t.tick(901_101);
  assert.deepEqual(gone, [c, a, b]);
  assert.equal(t.count, 0);
});

test('1M conns: fill, find every one, delete half, check', () => {
  const N = 1 << 20;
  const t = new ConnTable(N, { seed: 7 });
  assert.ok(t.bytesPerConn() < 128, `bytes per conn ${t.bytesPerConn()}`);
  const ids = new Int32Array(N);
  for (let k = 0; k < N; k++) {
    const i = t.alloc(6, 0xc6120000 + (k >>> 8), 1024 + (k & 0xff), 0xc6120164, 80, 0xc612020b + (k & 3), 80, 0, 0);
    t.hash(i, (k & 1) === 0);
    ids[k] = i;
  }
  assert.equal(t.alloc(6, 1, 1, 1, 1, 1, 1, 0, 0), -1);
  let bad = 0;
  for (let k = 0; k < N; k++) {
    if (t.lookupIn(6, 0xc6120000 + (k >>> 8), 1024 + (k & 0xff), 0xc6120164, 80) !== ids[k]) bad++;
    if ((k & 1) === 0 && t.lookupOut(6, 0xc612020b + (k & 3), 80, 0xc6120000 + (k >>> 8), 1024 + (k & 0xff)) !== ids[k]) bad++;
  }
  assert.equal(bad, 0);
  for (let k = 0; k < N; k += 2) t.free(ids[k]!);
  for (let k = 0; k < N; k++) {
    const got = t.lookupIn(6, 0xc6120000 + (k >>> 8), 1024 + (k & 0xff), 0xc6120164, 80);
    if ((k & 1) === 0 ? got !== -1 : got !== ids[k]) bad++;
    if ((k & 1) === 0 && t.lookupOut(6, 0xc612020b + (k & 3), 80, 0xc6120000 + (k >>> 8), 1024 + (k & 0xff)) !== -1) bad++;
  }
  assert.equal(bad, 0);
  assert.equal(t.count, N / 2);
});
