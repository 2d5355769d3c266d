// Weighted round-robin scheduler (ip_vs_wrr.c): passes over the list with a decreasing required weight.

import type { Dest, Scheduler, Service } from '../types.ts';
import { gcd, isOverloaded } from './common.ts';

/** The kernel's ip_vs_wrr_mark: current dest (null = list head), current/max weight, gcd step. */
interface WrrState {
  cl: Dest | null;
  clIdx: number;
  cw: number;
  mw: number;
  di: number;
}

function gcdWeight(svc: Service): number {
  let g = 0;
  for (const d of svc.dests) {
    const w = d.weight;
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
  }
  return g > 0 ? g : 1;
}

function maxWeight(svc: Service): number {
  let m = 0;
  for (const d of svc.dests) if (d.weight > m) m = d.weight;
  return m;
}

/** Any dest change: back to the head, new step and max; cw is clamped or realigned to the new step. */
function destChanged(svc: Service): void {
  const s = svc.schedData as WrrState;
  s.cl = null;
  s.clIdx = -1;
  s.di = gcdWeight(svc);
  // mw is lowered by (di - 1) so the last pass runs at cw = 1 and catches dests whose weight dropped
  // below di while a pass was under way.
  s.mw = maxWeight(svc) - (s.di - 1);
  if (s.cw > s.mw || s.cw === 0) s.cw = s.mw;
  else if (s.di > 1) s.cw = Math.trunc(s.cw / s.di) * s.di + 1;
}

export const wrr: Scheduler = {
  name: 'wrr',
  init(svc) {
    const di = gcdWeight(svc);
    const mw = maxWeight(svc) - (di - 1);
    const s: WrrState = { cl: null, clIdx: -1, cw: mw, mw, di };
    svc.schedData = s;
  },
  done(svc) {
    svc.schedData = null;
  },
  addDest: destChanged,
  delDest: destChanged,
  updDest: destChanged,
  schedule(svc) {
    const s = svc.schedData as WrrState;
    const dests = svc.dests;
    const n = dests.length;
    let i = -1;
    if (s.cl !== null) {
      if (dests[s.clIdx] !== s.cl) s.clIdx = dests.indexOf(s.cl);
      i = s.clIdx;
      if (i < 0) s.cl = null;
    }
    if (s.mw === 0) return null;
    const last = i;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    for (;;) {
      for (let j = i + 1; j < n; j++) {
        const d = dests[j]!;
        if (!isOverloaded(d) && d.weight >= s.cw) {
          s.cl = d;
          s.clIdx = j;
          return d;
        }
        if (j === stop) {
          // All dests were checked at weight >= 1: everything is overloaded.
          s.cl = d;
          s.clIdx = j;
          return null;
        }
      }
      i = -1;
      s.cw -= s.di;
      if (s.cw <= 0) {
        s.cw = s.mw;
        // Either the previous pass already ran at the lowest weight over every dest, or we started
        // at the head and so checked every dest at the lowest weight in one traversal.
        if (lastPass || last === -1) {
          s.cl = null;
          s.clIdx = -1;
          return null;
        }
        restarted = true;
      }
      lastPass = s.cw <= s.di;
      // The first traversal at the lowest weight covered only the dests after `last`: cover the rest.
      if (lastPass && restarted && last !== -1) stop = last;
    }
  },
};
