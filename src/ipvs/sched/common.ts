// Helpers every scheduler shares: the kernel's load measure, overload test, hash_32, gcd and the scheduler clock.

import { DEST_F, type Dest, type SchedPacket } from '../types.ts';

/** The kernel's ip_vs_dest_conn_overhead: active conns weigh 256 times an inactive one. */
export function connOverhead(d: Dest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** True when the dest carries IP_VS_DEST_F_OVERLOAD (set by the thresholds, never chosen for new conns). */
export function isOverloaded(d: Dest): boolean {
  return (d.flags & DEST_F.OVERLOAD) !== 0;
}

/** True when the dest is live in its service (not in the trash). */
export function isAvailable(d: Dest): boolean {
  return (d.flags & DEST_F.AVAILABLE) !== 0;
}

/** The kernel's generic hash_32(): multiply by GOLDEN_RATIO_32 and keep the top `bits` bits. */
export function hash32(v: number, bits: number): number {
  return Math.imul(v | 0, 0x61c88647) >>> (32 - bits);
}

/**
 * The 32-bit key the kernel's address-hashing schedulers (sh, dh, mh, lblc, lblcr) take from an IPv6
 * address: the XOR of its four words (`addr->ip6[0] ^ ... ^ addr->ip6[3]`, then ntohl; the byte swap
 * commutes with XOR, so it is the XOR of the host-order words). An IPv4 address is its own key.
 */
export function addr6Fold(a: ArrayLike<number>, ai: number): number {
  return (a[ai]! ^ a[ai + 1]! ^ a[ai + 2]! ^ a[ai + 3]!) >>> 0;
}

/** The hashing key of a packet's source address (IPv6 folded). */
export function schedSaddr(pkt: SchedPacket): number {
  const a = pkt.saddr6;
  return a ? addr6Fold(a, 0) : pkt.saddr;
}

/** The hashing key of a packet's destination address (IPv6 folded). */
export function schedDaddr(pkt: SchedPacket): number {
  const a = pkt.daddr6;
  return a ? addr6Fold(a, 0) : pkt.daddr;
}

/** The hashing key of a dest's address (IPv6 folded), as mh's permutations take it. */
export function destAddrKey(d: Dest): number {
  const a = d.addr6;
  return a ? addr6Fold(a, 0) : d.addr;
}

/** Greatest common divisor of two positive integers. */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Index of the highest set bit, 1-based, 0 for 0 (the kernel's fls()). */
export function fls(v: number): number {
  return v === 0 ? 0 : 32 - Math.clz32(v);
}

const monotonicMs = (): number => performance.now();
let clock: () => number = monotonicMs;

/**
 * Milliseconds on the schedulers' monotonic clock (lblc/lblcr cache ages). Tests drive it through
 * setSchedClock; the default is performance.now().
 */
export function schedNow(): number {
  return clock();
}

/** Replaces the schedulers' clock (ms, monotonic); null restores performance.now(). */
export function setSchedClock(fn: (() => number) | null): void {
  clock = fn ?? monotonicMs;
}
