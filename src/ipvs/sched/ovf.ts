// Weighted overflow scheduler (ip_vs_ovf.c): the highest-weight dest whose active conns do not exceed its weight.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** The kernel's list walk: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function ovfWalk(svc: Service): Dest | null {
  let best: Dest | null = null;
  let hw = 0;
  for (let i = 0, n = svc.dests.length; i < n; i++) {
    const d = svc.dests[i]!;
    const w = d.weight;
    // Only active conns count (so UDP, whose conns are inactive, never overflows): a dest is
    // full once active > weight, and takes conns while active <= weight.
    if ((d.flags & OVERLOAD) !== 0 || d.activeConns > w || w === 0) continue;
    if (best === null || w > hw) {
      best = d;
      hw = w;
    }
  }
  return best;
}

export const ovf: Scheduler = indexedScheduler('ovf', IX.OVF, ovfWalk);
