// Least-connection scheduler (ip_vs_lc.c): the dest with the smallest active*256 + inactive.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** The kernel's list walk: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function lcWalk(svc: Service): Dest | null {
  const dests = svc.dests;
  const n = dests.length;
  let least: Dest | null = null;
  let loh = 0;
  for (let i = 0; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) !== 0 || d.weight === 0) continue;
    const doh = d.activeConns * 256 + d.inactConns;
    // Strictly smaller wins: ties keep the earlier dest in list order (newest first).
    if (least === null || doh < loh) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export const lc: Scheduler = indexedScheduler('lc', IX.LC, lcWalk);
