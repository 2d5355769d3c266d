// The rate estimator against hand-computed fixed-point EWMA figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Estimator } from '../../src/ipvs/est.ts';
import { ST_CONNS, ST_FIELDS, ST_INBYTES, ST_INPKTS, StatsTable } from '../../src/ipvs/stats.ts';

test('EWMA weight 1/4 in the kernel fixed point, read-out rounding, zeroing', () => {
  const st = new StatsTable(4);
  const s = st.alloc();
  const est = new Estimator(st);
  est.start(s);
  const add = (f: number, v: number) => (st.c[s * ST_FIELDS + f] = st.c[s * ST_FIELDS + f]! + v);
  // 1000 pkts / 2 s = 500 pps steady: avg << 10 converges to 512000.
  const seen: number[] = [];
  for (let k = 0; k < 4; k++) {
    add(ST_INPKTS, 1000);
    add(ST_INBYTES, 100_000);
    add(ST_CONNS, 10);
    est.estimateSlot(s);
    seen.push(est.rawAvg(s, ST_INPKTS));
  }
  // a += (1000<<9 - a) >> 2: 128000, 224000, 296000, 350000
  assert.deepEqual(seen, [128000, 224000, 296000, 350000]);
  const r = est.rates(s);
  assert.equal(r.inpps, Math.floor((350000 + 511) / 1024)); // 342
  // bytes: 100000<<4 = 1.6e6; after 4 rounds 1.6e6*(1-0.75^4) = 1093750 -> (1093750+15)>>5 = 34180
  assert.equal(est.rawAvg(s, ST_INBYTES), 1093750);
  assert.equal(r.inbps, 34180);
  assert.equal(r.cps, Math.floor((10 * 512 * (1 - 0.75 ** 4) + 511) / 1024));
  // Traffic stops: the average decays, with a negative delta shifted arithmetically.
  est.estimateSlot(s);
  assert.equal(est.rawAvg(s, ST_INPKTS), 350000 + Math.floor(-350000 / 4));
  // -Z: rates zeroed, next round measures from the current counters.
  st.zeroSlot(s);
  est.reset(s);
  assert.equal(est.rates(s).inpps, 0);
  assert.equal(st.get(s, ST_INPKTS), 0);
  add(ST_INPKTS, 2);
  est.estimateSlot(s);
  assert.equal(est.rawAvg(s, ST_INPKTS), 256);
  assert.equal(est.rates(s).inpps, 0); // (256+511)>>10
});
