// FullNAT local-port pools: FIFO reuse, uniqueness under any take/give order, harmless double release, round robin over LIPs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lip, LaddrTable, LPORT_MAX, LPORT_MIN, SvcLaddrs } from '../../src/ipvs/laddr.ts';

test('a released port is reused last (FIFO), a double or foreign release changes nothing', () => {
  const l = new Lip(1, 0, '');
  const a = l.take();
  const b = l.take();
  assert.deepEqual([a, b], [LPORT_MIN, LPORT_MIN + 1]);
  l.give(a);
  l.give(a);
  l.give(80);
  l.give(LPORT_MIN + 100);
  assert.equal(l.available, LPORT_MAX - LPORT_MIN);
  assert.equal(l.conns, 1);
  assert.equal(l.take(), LPORT_MIN + 2, 'the freed port waits behind every never-used one');
});

test('property: ports held are always distinct and available + held = pool size', () => {
  const size = LPORT_MAX - LPORT_MIN + 1;
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 400 }), (ops) => {
    const l = new Lip(1, 0, '');
    const held: number[] = [];
    for (const [take, k] of ops) {
      if (take || held.length === 0) {
        const p = l.take();
        assert.ok(p >= LPORT_MIN && p <= LPORT_MAX);
        assert.ok(!held.includes(p));
        held.push(p);
      } else {
        const [p] = held.splice(k % held.length, 1);
        l.give(p!);
        assert.ok(!l.inUse(p!));
      }
      assert.equal(l.available + held.length, size);
      assert.equal(l.conns, held.length);
    }
  }));
});

test('exhaustion: take() answers -1 and counts a conflict; the pool moves on to the next LIP', () => {
  const t = new LaddrTable();
  const pool = new SvcLaddrs();
  const a = t.obtain(10, 0, '');
  const b = t.obtain(11, 0, '');
  pool.lips.push(a, b);
  const size = LPORT_MAX - LPORT_MIN + 1;
  for (let i = 0; i < size; i++) assert.ok(a.take() >= 0);
  assert.equal(a.take(), -1);
  assert.equal(a.conflicts, 1);
  assert.equal(pool.bind(), b, 'skips the exhausted LIP');
  for (let i = 1; i < size; i++) assert.ok(b.take() >= 0);
  assert.equal(pool.bind(), null);
});

test('a LIP is forgotten only when no service lists it and no conn holds a port', () => {
  const t = new LaddrTable();
  const gone: number[] = [];
  t.onForget = (l) => gone.push(l.addr);
  const l = t.obtain(10, 0, '');
  l.refs = 1;
  const p = l.take();
  l.refs = 0;
  assert.equal(t.forgetIfUnused(l), false);
  assert.equal(t.release(10, p), true);
  assert.deepEqual(gone, [10]);
  assert.equal(t.has(10), false);
});
