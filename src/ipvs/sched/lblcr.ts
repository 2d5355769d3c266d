// Locality-based least-connection with replication (ip_vs_lblcr.c): each destination address maps to a set of dests.

import type { Dest, Scheduler, Service } from '../types.ts';
import { connOverhead, isAvailable, isOverloaded, schedNow } from './common.ts';
import { DEFAULT_EXPIRATION_MS, LocalityTable, localityOverloaded } from './locality.ts';
import { weightedLeast } from './wlc.ts';

let expiration = DEFAULT_EXPIRATION_MS;

/**
 * The lblcr_expiration sysctl, in ms (default 24 h): a set with more than one member that has not
 * changed for this long loses its most loaded member; idle entries this old go at each full check.
 */
export function setLblcrExpiration(ms: number): void {
  expiration = ms;
}

export function lblcrExpiration(): number {
  return expiration;
}

/** Per-service state: the address table and, per entry, its dest set (newest first) and last change. */
export class LblcrState {
  sets: Dest[][] = [];
  lastmod = new Float64Array(64);
  readonly table: LocalityTable;
  constructor(now: number) {
    for (let i = 0; i < 64; i++) this.sets.push([]);
    this.table = new LocalityTable(
      now,
      (i) => {
        this.sets[i]!.length = 0;
      },
      (cap) => {
        while (this.sets.length < cap) this.sets.push([]);
        const lm = new Float64Array(cap);
        lm.set(this.lastmod);
        this.lastmod = lm;
      },
    );
  }
}

/** Weighted least-loaded live member (ip_vs_dest_set_min). */
function setMin(set: Dest[]): Dest | null {
  const n = set.length;
  let least: Dest | null = null;
  let loh = 0;
  let i = 0;
  for (; i < n; i++) {
    const d = set[i]!;
    if (isOverloaded(d)) continue;
    if (d.weight > 0 && isAvailable(d)) {
      least = d;
      loh = connOverhead(d);
      break;
    }
  }
  if (least === null) return null;
  for (i++; i < n; i++) {
    const d = set[i]!;
    if (isOverloaded(d)) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight && isAvailable(d)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** Weighted most-loaded member with weight > 0 (ip_vs_dest_set_max). */
function setMax(set: Dest[]): Dest | null {
  const n = set.length;
  let most: Dest | null = null;
  let moh = 0;
  let i = 0;
  for (; i < n; i++) {
    const d = set[i]!;
    if (d.weight > 0) {
      most = d;
      moh = connOverhead(d);
      break;
    }
  }
  if (most === null) return null;
  for (i++; i < n; i++) {
    const d = set[i]!;
    const doh = connOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

function setErase(s: LblcrState, en: number, dest: Dest, now: number): void {
  const set = s.sets[en]!;
  const n = set.length;
  for (let i = 0; i < n; i++) {
    if (set[i] === dest) {
      for (let k = i + 1; k < n; k++) set[k - 1] = set[k]!;
      set.length = n - 1;
      s.lastmod[en] = now;
      return;
    }
  }
}

/** Adds a member at the head of the set unless present (ip_vs_dest_set_insert with check). */
function setInsert(s: LblcrState, en: number, dest: Dest, now: number): void {
  const set = s.sets[en]!;
  for (let i = 0; i < set.length; i++) if (set[i] === dest) return;
  set.unshift(dest);
  s.lastmod[en] = now;
}

export const lblcr: Scheduler = {
  name: 'lblcr',
  init(svc) {
    svc.schedData = new LblcrState(schedNow());
  },
  done(svc) {
    (svc.schedData as LblcrState).table.flush();
    svc.schedData = null;
  },
  schedule(svc: Service, pkt) {
    const s = svc.schedData as LblcrState;
    const t = s.table;
    const now = schedNow();
    if (now >= t.nextCheck) t.runDue(now, expiration);
    const daddr = pkt.daddr >>> 0;
    const d6 = pkt.daddr6;
    const en = d6 ? t.get6(d6, 0) : t.get(daddr);
    if (en >= 0) {
      t.lastuse[en] = now;
      const set = s.sets[en]!;
      let dest = setMin(set);
      // A replicated set that has been stable for the expiration period sheds its most loaded member.
      if (set.length > 1 && now > s.lastmod[en]! + expiration) {
        const m = setMax(set);
        if (m !== null) setErase(s, en, m, now);
      }
      if (dest !== null && !localityOverloaded(dest, svc)) return dest;
      dest = weightedLeast(svc);
      if (dest === null) return null;
      setInsert(s, en, dest, now);
      return dest;
    }
    const dest = weightedLeast(svc);
    if (dest === null) return null;
    const ne = d6 ? t.add6(d6, 0, now) : t.add(daddr, now);
    s.sets[ne]!.push(dest);
    s.lastmod[ne] = now;
    return dest;
  },
};
