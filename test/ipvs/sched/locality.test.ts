// lblc and lblcr: destination-address locality, the lblc overload rule, cache expiry driven by the scheduler clock, set replication.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setSchedClock } from '../../../src/ipvs/sched/common.ts';
import { setLblcExpiration, type LblcState } from '../../../src/ipvs/sched/lblc.ts';
import { setLblcrExpiration, type LblcrState } from '../../../src/ipvs/sched/lblcr.ts';
import { DEFAULT_EXPIRATION_MS, LOCALITY_MAX_SIZE } from '../../../src/ipvs/sched/locality.ts';
import { build, delDest, pick, pkt } from './helpers.ts';

let now = 0;
const MIN = 60_000;
setSchedClock(() => now);
afterEach(() => {
  now = 0;
  setLblcExpiration(DEFAULT_EXPIRATION_MS);
  setLblcrExpiration(DEFAULT_EXPIRATION_MS);
});

const X = 0xc6130001;
const Y = 0xc6130002;

test('lblc: a destination address sticks to its cached dest; a new one goes by wlc', () => {
  now = 0;
  const { svc, d } = build('lblc', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A'); // wlc tie -> first
  d.A!.activeConns = 1; // A: 1 > 1? no, not overloaded in lblc's sense
  assert.equal(pick(svc, pkt(2, X)), 'A');
  assert.equal(pick(svc, pkt(3, Y)), 'B'); // wlc: 0 < 256
});

test('lblc: the cached dest is replaced when active > weight and some dest is under half its weight', () => {
  const { svc, d } = build('lblc', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 4 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.A!.activeConns = 2;
  d.B!.activeConns = 2; // 2*2 < 4 is false: nobody is under half, so A stays
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.B!.activeConns = 1; // 1*2 < 4: A counts as overloaded -> wlc -> B, and the cache now says B
  assert.equal(pick(svc, pkt(1, X)), 'B');
  d.A!.activeConns = 0;
  assert.equal(pick(svc, pkt(1, X)), 'B');
});

test('lblc: a deleted dest (AVAILABLE cleared) or a quiesced one is not used from the cache', () => {
  const { svc, d } = build('lblc', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
    { name: 'C', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  delDest(svc, d.A!);
  assert.equal(pick(svc, pkt(1, X)), 'B');
  d.B!.weight = 0;
  assert.equal(pick(svc, pkt(1, X)), 'C');
});

test('lblc: entries expire at the full check after lblc_expiration of idleness', () => {
  // Timer runs every 60 s from init; counter starts at 1, so full checks run at 30 min, 60 min, ...
  setLblcExpiration(10 * MIN);
  now = 0;
  const { svc, d } = build('lblc', [
    { name: 'A', weight: 10 },
    { name: 'B', weight: 10 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.A!.activeConns = 3; // wlc would now prefer B, the cache keeps A
  now = 29 * MIN; // no full check yet: the entry lives, and this use refreshes it to 29 min
  assert.equal(pick(svc, pkt(1, X)), 'A');
  now = 59 * MIN; // the 30 min check keeps it (30 < 29 + 10)... but by 59 min no check has run since
  assert.equal(pick(svc, pkt(1, X)), 'A'); // refreshed to 59 min
  now = 89 * MIN + 1; // the 60 min check: 60 < 59 + 10 keeps it; the 90 min check is not due yet
  assert.equal(pick(svc, pkt(1, X)), 'A'); // refreshed to 89 min
  now = 120 * MIN + 1; // the 90 min check keeps it (90 < 99); the 120 min check drops it (120 >= 99)
  assert.equal(pick(svc, pkt(1, X)), 'B');
});

test('lblc: the default 24 h expiration, caught up after a long idle spell', () => {
  now = 0;
  const { svc, d } = build('lblc', [
    { name: 'A', weight: 10 },
    { name: 'B', weight: 10 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.A!.activeConns = 3;
  now = 24 * 60 * MIN - MIN; // last full check at 23.5 h: 23.5 h < 0 + 24 h keeps it
  assert.equal(pick(svc, pkt(1, X)), 'A'); // lastuse = 23 h 59
  now = 48 * 60 * MIN - 1; // the 47.5 h check keeps it (< 47 h 59)
  assert.equal(pick(svc, pkt(1, X)), 'A'); // lastuse = 48 h - 1 ms
  now = 72 * 60 * MIN; // the 72 h check: 72 h >= 48 h - 1 ms + 24 h drops it
  assert.equal(pick(svc, pkt(1, X)), 'B');
});

test('lblc: over 16384 entries, entries idle for 6 min are collected down toward the limit', () => {
  now = 0;
  const { svc } = build('lblc', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  const total = LOCALITY_MAX_SIZE + 300;
  for (let i = 0; i < total; i++) pick(svc, pkt(1, 0x0a000000 + i));
  const t = (svc.schedData as LblcState).table;
  assert.equal(t.entries, total);
  now = 5 * MIN + 59_000; // runs at 1..5 min find nothing idle for 6 min yet
  pick(svc, pkt(1, 0x0a000000)); // an existing address: refreshes it, adds nothing
  assert.equal(t.entries, total);
  now = 6 * MIN; // the 6 min run: goal = 300*4/3 = 400 entries, whole buckets at a time
  pick(svc, pkt(1, 0x0a000001));
  assert.ok(t.entries <= total - 400, `entries ${t.entries}`);
  assert.ok(t.entries >= total - 400 - 200, `collected far past the goal: ${t.entries}`);
  // Freed slots are reused for new addresses: no growth.
  const cap = t.capacity;
  for (let i = 0; i < 400; i++) pick(svc, pkt(1, 0x0b000000 + i));
  assert.equal(t.capacity, cap);
});

test('lblcr: an overloaded member makes the set grow; set_min picks within it', () => {
  now = 0;
  const { svc, d } = build('lblcr', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.A!.activeConns = 2; // 2 > 1 and B is under half its weight -> wlc -> B joins the set
  assert.equal(pick(svc, pkt(1, X)), 'B');
  const s = svc.schedData as LblcrState;
  const en = s.table.get(X);
  assert.deepEqual(s.sets[en]!.map((x) => (x as unknown as { name: string }).name), ['B', 'A']);
  // Both members live: the least loaded per weight is used. Make B busier than A.
  d.A!.activeConns = 0;
  d.B!.activeConns = 1; // B: 256/1 vs A: 0 -> A (not overloaded: 0 <= 1)
  assert.equal(pick(svc, pkt(1, X)), 'A');
});

test('lblcr: a multi-member set unchanged for lblcr_expiration drops its most loaded member', () => {
  setLblcrExpiration(30 * MIN);
  now = MIN;
  const { svc, d } = build('lblcr', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  d.A!.activeConns = 2;
  assert.equal(pick(svc, pkt(1, X)), 'B'); // set [B, A], lastmod = 1 min
  const s = svc.schedData as LblcrState;
  const names = () => s.sets[s.table.get(X)]!.map((x) => (x as unknown as { name: string }).name);
  // Timer ticks from 2 min; the first full check is the 30th tick, at 31 min, and would drop an
  // entry last used at 1 min (31 >= 1 + 30): a use at 20 min keeps it (the set is not modified).
  now = 20 * MIN;
  assert.equal(pick(svc, pkt(1, X)), 'B');
  now = 31 * MIN; // 31 min > 1 + 30 is false: not yet
  assert.equal(pick(svc, pkt(1, X)), 'B');
  assert.deepEqual(names(), ['B', 'A']);
  now = 31 * MIN + 1; // now > lastmod + expiration: set_max = A (512/1 against 0/1) is erased
  assert.equal(pick(svc, pkt(1, X)), 'B');
  assert.deepEqual(names(), ['B']);
});

test('lblcr: no live member falls back to wlc over the service', () => {
  now = 0;
  const { svc, d } = build('lblcr', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
  ]);
  assert.equal(pick(svc, pkt(1, X)), 'A');
  delDest(svc, d.A!);
  assert.equal(pick(svc, pkt(1, X)), 'B');
  d.B!.flags |= 2;
  assert.equal(pick(svc, pkt(1, X)), null);
});
