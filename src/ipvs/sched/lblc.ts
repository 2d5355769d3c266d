// Locality-based least-connection scheduler (ip_vs_lblc.c): a destination-address cache in front of wlc.

import type { Dest, Scheduler, Service } from '../types.ts';
import { isAvailable, schedNow } from './common.ts';
import { DEFAULT_EXPIRATION_MS, LocalityTable, localityOverloaded } from './locality.ts';
import { weightedLeast } from './wlc.ts';

let expiration = DEFAULT_EXPIRATION_MS;

/** The lblc_expiration sysctl, in ms (default 24 h): idle entries older than this go at each full check. */
export function setLblcExpiration(ms: number): void {
  expiration = ms;
}

export function lblcExpiration(): number {
  return expiration;
}

/** Per-service state: the address table and, per entry, the cached dest. */
export class LblcState {
  dest: (Dest | null)[] = new Array<Dest | null>(64).fill(null);
  readonly table: LocalityTable;
  constructor(now: number) {
    this.table = new LocalityTable(
      now,
      (i) => {
        this.dest[i] = null;
      },
      (cap) => {
        while (this.dest.length < cap) this.dest.push(null);
      },
    );
  }
}

export const lblc: Scheduler = {
  name: 'lblc',
  init(svc) {
    svc.schedData = new LblcState(schedNow());
  },
  done(svc) {
    (svc.schedData as LblcState).table.flush();
    svc.schedData = null;
  },
  schedule(svc: Service, pkt) {
    const s = svc.schedData as LblcState;
    const t = s.table;
    const now = schedNow();
    if (now >= t.nextCheck) t.runDue(now, expiration);
    const daddr = pkt.daddr >>> 0;
    const d6 = pkt.daddr6;
    const en = d6 ? t.get6(d6, 0) : t.get(daddr);
    if (en >= 0) {
      t.lastuse[en] = now;
      const d = s.dest[en]!;
      // A deleted dest sits in the trash without AVAILABLE; the entry must then be replaced.
      if (isAvailable(d) && d.weight > 0 && !localityOverloaded(d, svc)) return d;
    }
    const dest = weightedLeast(svc);
    if (dest === null) return null;
    if (en >= 0) {
      if (s.dest[en] === dest) return dest;
      // The kernel frees the old entry and hashes a fresh one at the bucket head.
      t.remove(en);
    }
    s.dest[d6 ? t.add6(d6, 0, now) : t.add(daddr, now)] = dest;
    return dest;
  },
};
