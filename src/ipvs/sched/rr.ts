// Round-robin scheduler (ip_vs_rr.c): a cursor walks the dest list, skipping quiesced and overloaded dests.

import type { Dest, Scheduler, Service } from '../types.ts';
import { isOverloaded } from './common.ts';

/**
 * The kernel keeps a pointer to the list node last chosen (or the list head). We keep the dest and
 * its index; the index is re-derived from the dest whenever the list shifted under it, so the cursor
 * behaves like the kernel's node pointer when new dests are inserted at the head.
 */
interface RrState {
  cur: Dest | null;
  idx: number;
}

function state(svc: Service): RrState {
  return svc.schedData as RrState;
}

/** Index of the cursor dest in svc.dests, -1 for the list head (re-synced if the list moved). */
function cursorIndex(svc: Service, s: RrState): number {
  const cur = s.cur;
  if (cur === null) return -1;
  if (svc.dests[s.idx] !== cur) {
    s.idx = svc.dests.indexOf(cur);
    if (s.idx < 0) s.cur = null;
  }
  return s.idx;
}

export const rr: Scheduler = {
  name: 'rr',
  init(svc) {
    const s: RrState = { cur: null, idx: -1 };
    svc.schedData = s;
  },
  done(svc) {
    svc.schedData = null;
  },
  addDest(svc) {
    // New dests go to the head, shifting the cursor's index; the kernel's node pointer is unaffected.
    cursorIndex(svc, state(svc));
  },
  delDest(svc, dest) {
    const s = state(svc);
    if (s.cur === dest) {
      // Called after the unlink, like the kernel: the cursor steps back to the previous entry (or the
      // head), so the dest that followed the deleted one is the next pick.
      const prev = s.idx - 1;
      s.cur = prev >= 0 ? (svc.dests[prev] ?? null) : null;
      s.idx = s.cur === null ? -1 : prev;
    } else {
      cursorIndex(svc, s);
    }
  },
  schedule(svc) {
    const s = state(svc);
    const dests = svc.dests;
    const n = dests.length;
    const start = cursorIndex(svc, s);
    // From the head: one pass. From a dest: the rest of the list, then from the head up to and
    // including the cursor dest itself (it may be the only eligible one).
    let j = start;
    for (let k = 0; k < n; k++) {
      j++;
      if (j === n) j = 0;
      const d = dests[j]!;
      if (d.weight > 0 && !isOverloaded(d)) {
        s.cur = d;
        s.idx = j;
        return d;
      }
    }
    return null;
  },
};
