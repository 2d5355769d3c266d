// Shortest-expected-delay scheduler (ip_vs_sed.c): wlc's search with overhead = active conns + 1.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** The kernel's list walk: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function sedWalk(svc: Service): Dest | null {
  const dests = svc.dests;
  const n = dests.length;
  let i = 0;
  let least: Dest | null = null;
  let loh = 0;
  for (; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) === 0 && d.weight > 0) {
      least = d;
      // SED counts only active conns, plus the one being scheduled.
      loh = d.activeConns + 1;
      break;
    }
  }
  if (least === null) return null;
  let lw = least.weight;
  for (i++; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) !== 0) continue;
    const doh = d.activeConns + 1;
    if (loh * d.weight > doh * lw) {
      least = d;
      loh = doh;
      lw = d.weight;
    }
  }
  return least;
}

export const sed: Scheduler = indexedScheduler('sed', IX.SED, sedWalk);
