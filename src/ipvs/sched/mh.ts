// Maglev-hashing scheduler (ip_vs_mh.c): a 4093-slot lookup table filled from per-dest siphash permutations.

import { SVC_F, IPPROTO_TCP, IPPROTO_UDP, type Dest, type SchedPacket, type Scheduler, type Service } from '../types.ts';
import { addr6Fold, destAddrKey, fls, gcd, isOverloaded, schedSaddr } from './common.ts';
import { hsiphash32, type SipKey } from './siphash.ts';

/** primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] with the default index 12. */
export const MH_TAB_SIZE = 4093;
/** CONFIG_IP_VS_MH_TAB_INDEX / 2: the weight bits kept before shifting. */
const MH_TAB_BITS = 6;
const IPPROTO_SCTP = 132;

/**
 * The kernel's fixed keys (generate_hash_secret): hsiphash_key_t holds two unsigned longs, so on
 * 64-bit hosts each key word is the 64-bit value 2654435761 or 2654446892 (high halves zero).
 */
const HASH1: SipKey = { k0hi: 0, k0lo: 2654435761, k1hi: 0, k1lo: 2654435761 };
const HASH2: SipKey = { k0hi: 0, k0lo: 2654446892, k1hi: 0, k1lo: 2654446892 };

interface MhState {
  lookup: (Dest | null)[];
  gcd: number;
  rshift: number;
}

/** ip_vs_mh_hashkey: hsiphash of the u32 (offset + port + addr), all host order. */
export function mhHashKey(key: SipKey, addr: number, port: number, offset: number): number {
  return hsiphash32(key, (offset + port + addr) >>> 0);
}

/**
 * The last non-zero weight, which mh uses so that quiescing a dest does not reshuffle the table.
 * While a dest's weight is positive the kernel's last_weight equals it, so reading the weight then
 * is the same value and does not depend on the caller keeping lastWeight in step.
 */
function lastWeight(d: Dest): number {
  return d.weight > 0 ? d.weight : d.lastWeight;
}

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || isOverloaded(d);
}

function gcdLastWeight(svc: Service): number {
  let g = 0;
  for (const d of svc.dests) {
    const w = lastWeight(d);
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
  }
  return g;
}

/** Shift so that max_weight/gcd keeps at most MH_TAB_BITS significant bits. */
function shiftWeight(svc: Service, g: number): number {
  if (g < 1) return 0;
  let m = 0;
  for (const d of svc.dests) {
    const w = lastWeight(d);
    if (w > m) m = w;
  }
  const shift = fls(Math.trunc(m / g)) - MH_TAB_BITS;
  return shift > 0 ? shift : 0;
}

/** Rebuilds the lookup table; with more dests than slots the kernel refuses (EINVAL) and keeps the old one. */
function reassign(svc: Service): void {
  const s = svc.schedData as MhState;
  const dests = svc.dests;
  const n = dests.length;
  if (n > MH_TAB_SIZE) return;
  s.gcd = gcdLastWeight(svc);
  s.rshift = shiftWeight(svc, s.gcd);
  const lookup = s.lookup;
  if (s.gcd < 1) {
    lookup.fill(null);
    return;
  }
  const skip = new Uint32Array(n);
  const perm = new Uint32Array(n);
  const turns = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const d = dests[i]!;
    const key = destAddrKey(d);
    perm[i] = mhHashKey(HASH1, key, d.port, 0) % MH_TAB_SIZE;
    skip[i] = (mhHashKey(HASH2, key, d.port, 0) % (MH_TAB_SIZE - 1)) + 1;
    const lw = lastWeight(d);
    const t = Math.trunc(lw / s.gcd) >> s.rshift;
    turns[i] = t !== 0 ? t : lw !== 0 ? 1 : 0;
  }
  // Round-robin over the dests in list order: each claims its next free preferred slot `turns`
  // times per round, until every slot is taken.
  const used = new Uint8Array(MH_TAB_SIZE);
  let filled = 0;
  let dtCount = 0;
  while (filled < MH_TAB_SIZE) {
    for (let p = 0; p < n; ) {
      if (turns[p]! < 1) {
        p++;
        continue;
      }
      let c = perm[p]!;
      while (used[c] !== 0) {
        c += skip[p]!;
        if (c >= MH_TAB_SIZE) c -= MH_TAB_SIZE;
      }
      perm[p] = c;
      used[c] = 1;
      lookup[c] = dests[p]!;
      if (++filled === MH_TAB_SIZE) return;
      if (++dtCount >= turns[p]!) {
        dtCount = 0;
        p++;
      }
    }
  }
}

function hashPort(svc: Service, pkt: SchedPacket): number {
  if ((svc.flags & SVC_F.SCHED2) === 0) return 0;
  const p = pkt.proto;
  return p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP ? pkt.sport : 0;
}

/** The slot a client address (and port, with mh-port) maps to; exported for tests and tools. */
export function mhSlot(addr: number, port: number): number {
  return mhHashKey(HASH1, addr, port, 0) % MH_TAB_SIZE;
}

/** mhSlot for an IPv6 client address `a[ai..ai+3]` (ip_vs_mh_hashkey folds it first). */
export function mhSlot6(a: ArrayLike<number>, ai: number, port: number): number {
  return mhSlot(addr6Fold(a, ai), port);
}

/** The slot an IPv6 dest's permutation starts at, and its skip (ip_vs_mh_permutate), for tests and tools. */
export function mhPermutation6(a: ArrayLike<number>, ai: number, port: number): { offset: number; skip: number } {
  const k = addr6Fold(a, ai);
  return { offset: mhHashKey(HASH1, k, port, 0) % MH_TAB_SIZE, skip: (mhHashKey(HASH2, k, port, 0) % (MH_TAB_SIZE - 1)) + 1 };
}

/** A copy of a service's lookup table (slow path: tests, diagnostics). */
export function mhTable(svc: Service): (Dest | null)[] {
  return (svc.schedData as MhState).lookup.slice();
}

export const mh: Scheduler = {
  name: 'mh',
  init(svc) {
    const s: MhState = { lookup: new Array<Dest | null>(MH_TAB_SIZE).fill(null), gcd: 0, rshift: 0 };
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
    const s = svc.schedData as MhState;
    const port = hashPort(svc, pkt);
    const addr = schedSaddr(pkt);
    const ihash = mhHashKey(HASH1, addr, port, 0) % MH_TAB_SIZE;
    let d = s.lookup[ihash]!;
    if (d === null) return null;
    if (!unavailable(d)) return d;
    if ((svc.flags & SVC_F.SCHED1) === 0) return null;
    // mh-fallback: rehash with successive offsets from the original slot; an empty slot ends it.
    for (let off = 0; off < MH_TAB_SIZE; off++) {
      const roff = (off + ihash) % MH_TAB_SIZE;
      d = s.lookup[mhHashKey(HASH1, addr, port, roff) % MH_TAB_SIZE]!;
      if (d === null) return null;
      if (!unavailable(d)) return d;
    }
    return null;
  },
};
