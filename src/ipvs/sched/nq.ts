// Never-queue scheduler (ip_vs_nq.c): the first idle dest if any, else the shortest expected delay.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** The kernel's list walk: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function nqWalk(svc: Service): Dest | null {
  let least: Dest | null = null;
  let loh = 0;
  for (let i = 0, n = svc.dests.length; i < n; i++) {
    const d = svc.dests[i]!;
    if ((d.flags & OVERLOAD) !== 0 || d.weight === 0) continue;
    // An idle server takes the conn at once, even if a later one has a better ratio.
    if (d.activeConns === 0) return d;
    const doh = d.activeConns + 1;
    if (least === null || loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export const nq: Scheduler = indexedScheduler('nq', IX.NQ, nqWalk);
