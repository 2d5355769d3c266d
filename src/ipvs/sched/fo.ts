// Weighted failover scheduler (ip_vs_fo.c): the non-overloaded dest with the highest weight.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** The kernel's list walk: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function foWalk(svc: Service): Dest | null {
  let best: Dest | null = null;
  let hw = 0;
  for (let i = 0, n = svc.dests.length; i < n; i++) {
    const d = svc.dests[i]!;
    // Strictly greater: equal weights keep the earlier dest; weight 0 never beats hw = 0.
    if ((d.flags & OVERLOAD) === 0 && d.weight > hw) {
      best = d;
      hw = d.weight;
    }
  }
  return best;
}

export const fo: Scheduler = indexedScheduler('fo', IX.FO, foWalk);
