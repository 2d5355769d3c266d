// Destination-hashing scheduler (ip_vs_dh.c): 256 buckets over the packet's destination address, no fallback.

import type { Dest, Scheduler, Service } from '../types.ts';
import { addr6Fold, hash32, isAvailable, isOverloaded, schedDaddr } from './common.ts';

/** CONFIG_IP_VS_DH_TAB_BITS default. */
export const DH_TAB_BITS = 8;
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;

interface DhState {
  buckets: (Dest | null)[];
}

/** Bucket i gets the (i mod n)-th dest in list order: one bucket per dest whatever its weight. */
function reassign(svc: Service): void {
  const s = svc.schedData as DhState;
  const dests = svc.dests;
  const n = dests.length;
  for (let i = 0; i < DH_TAB_SIZE; i++) s.buckets[i] = n === 0 ? null : dests[i % n]!;
}

/** The bucket a destination address hashes to (host-order u32). */
export function dhBucket(daddr: number): number {
  return hash32(daddr, DH_TAB_BITS);
}

/** ip_vs_dh_hashkey for AF_INET6: the bucket of the folded address `a[ai..ai+3]`. */
export function dhBucket6(a: ArrayLike<number>, ai: number): number {
  return hash32(addr6Fold(a, ai), DH_TAB_BITS);
}

export const dh: Scheduler = {
  name: 'dh',
  init(svc) {
    const s: DhState = { buckets: new Array<Dest | null>(DH_TAB_SIZE).fill(null) };
    svc.schedData = s;
    reassign(svc);
  },
  done(svc) {
    svc.schedData = null;
  },
  // The kernel rebuilds on add and delete only: weights play no part in the table.
  addDest: reassign,
  delDest: reassign,
  schedule(svc, pkt) {
    const s = svc.schedData as DhState;
    const d = s.buckets[dhBucket(schedDaddr(pkt))]!;
    if (d === null || !isAvailable(d) || d.weight <= 0 || isOverloaded(d)) return null;
    return d;
  },
};
