// Weighted least-connection scheduler (ip_vs_wlc.c), the default: smallest overhead/weight, compared by cross-multiplication.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexedScheduler } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/**
 * The kernel's two-stage weighted-least search shared by wlc and the lblc/lblcr fallbacks: the first
 * non-overloaded dest with weight > 0 seeds `least`; a later dest replaces it only when
 * loh * w(dest) > doh * w(least), so ties keep the earlier dest and weight 0 can never win.
 * Overhead is active*256 + inactive. (sed has its own copy with its overhead: a shared loop taking
 * the overhead as a callback measured several times slower.) wlc itself answers from its LoadIndex
 * when it can; lblc/lblcr walk, since they keep their own scheduler data.
 */
export function weightedLeast(svc: Service): Dest | null {
  const dests = svc.dests;
  const n = dests.length;
  let i = 0;
  let least: Dest | null = null;
  let loh = 0;
  for (; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) === 0 && d.weight > 0) {
      least = d;
      loh = d.activeConns * 256 + d.inactConns;
      break;
    }
  }
  if (least === null) return null;
  let lw = least.weight;
  for (i++; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) !== 0) continue;
    const doh = d.activeConns * 256 + d.inactConns;
    if (loh * d.weight > doh * lw) {
      least = d;
      loh = doh;
      lw = d.weight;
    }
  }
  return least;
}

export const wlc: Scheduler = indexedScheduler('wlc', IX.WLC, weightedLeast);
