// Source-hashing scheduler (ip_vs_sh.c): 256 weight-repeated buckets over the client address, with sh-fallback and sh-port.

import { SVC_F, IPPROTO_TCP, IPPROTO_UDP, type Dest, type SchedPacket, type Scheduler, type Service } from '../types.ts';
import { addr6Fold, hash32, isOverloaded, schedSaddr } from './common.ts';

/** CONFIG_IP_VS_SH_TAB_BITS default. */
export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;
const IPPROTO_SCTP = 132;

interface ShState {
  buckets: (Dest | null)[];
}

/**
 * Fills the buckets cyclically over the list: each dest takes `weight` consecutive buckets, and a
 * weight-0 dest still takes one (the current weight is used, so quiescing reshuffles the table).
 */
function reassign(svc: Service): void {
  const s = svc.schedData as ShState;
  const dests = svc.dests;
  const n = dests.length;
  let p = 0;
  let count = 0;
  for (let i = 0; i < SH_TAB_SIZE; i++) {
    if (n === 0) {
      s.buckets[i] = null;
      continue;
    }
    if (p === n) p = 0;
    const d = dests[p]!;
    s.buckets[i] = d;
    if (++count >= d.weight) {
      p++;
      count = 0;
    }
  }
}

/** ip_vs_sh_hashkey: (offset + hash_32(port + addr, 8)) & 255, addresses and ports in host order. */
export function shHashKey(addr: number, port: number, offset: number): number {
  return (offset + hash32((port + addr) >>> 0, SH_TAB_BITS)) & SH_TAB_MASK;
}

/** ip_vs_sh_hashkey for AF_INET6: the same formula over the folded address `a[ai..ai+3]`. */
export function shHashKey6(a: ArrayLike<number>, ai: number, port: number, offset: number): number {
  return shHashKey(addr6Fold(a, ai), port, offset);
}

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || isOverloaded(d);
}

function hashPort(svc: Service, pkt: SchedPacket): number {
  if ((svc.flags & SVC_F.SCHED2) === 0) return 0;
  const p = pkt.proto;
  return p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP ? pkt.sport : 0;
}

export const sh: Scheduler = {
  name: 'sh',
  init(svc) {
    const s: ShState = { buckets: new Array<Dest | null>(SH_TAB_SIZE).fill(null) };
    svc.schedData = s;
    reassign(svc);
  },
  done(svc) {
    svc.schedData = null;
  },
  addDest: reassign,
  delDest: reassign,
  updDest: reassign,
  schedule(svc, pkt) {
    const s = svc.schedData as ShState;
    const port = hashPort(svc, pkt);
    const addr = schedSaddr(pkt);
    const ihash = shHashKey(addr, port, 0);
    let d = s.buckets[ihash]!;
    if (d === null) return null;
    if (!unavailable(d)) return d;
    if ((svc.flags & SVC_F.SCHED1) === 0) return null;
    // sh-fallback: walk the table from the original bucket, rehashing with each offset; an empty
    // bucket ends the walk.
    for (let off = 0; off < SH_TAB_SIZE; off++) {
      const roff = (off + ihash) % SH_TAB_SIZE;
      d = s.buckets[shHashKey(addr, port, roff)]!;
      if (d === null) return null;
      if (!unavailable(d)) return d;
    }
    return null;
  },
};
