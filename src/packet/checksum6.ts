// IPv6 upper-layer checksums: the RFC 8200 §8.1 pseudo-header, full sums, and incremental and partial updates for 128-bit rewrites.

import { csumFold, sum16 } from './checksum.ts';

/**
 * Sum of the IPv6 pseudo-header (source and destination address from the buffer, the 32-bit
 * upper-layer length, the next-header value), unfolded (< 2^21). TCP, UDP and ICMPv6 all use it:
 * unlike ICMP for IPv4, an ICMPv6 checksum covers the addresses.
 */
export function pseudoSum6(buf: Uint8Array, saddrAt: number, daddrAt: number, nexthdr: number, len: number): number {
  let s = nexthdr + (len >>> 16) + (len & 0xffff);
  for (let i = 0; i < 16; i += 2) {
    s += ((buf[saddrAt + i]! << 8) | buf[saddrAt + i + 1]!) + ((buf[daddrAt + i]! << 8) | buf[daddrAt + i + 1]!);
  }
  return s;
}

/** Offset of the checksum field in a TCP (16), UDP (6) or ICMPv6 (2) header; -1 otherwise. */
export function l4CsumOffset6(proto: number): number {
  return proto === 6 ? 16 : proto === 17 ? 6 : proto === 58 ? 2 : -1;
}

/**
 * Full checksum of the TCP/UDP/ICMPv6 message [l4, end) under the IPv6 header at `l3` (its own
 * addresses: with a routing header still to be processed the final destination differs, which the
 * caller must know), as if the field were zero. UDP: a computed 0 is sent as 0xffff (RFC 8200 §8.1).
 */
export function l4Checksum6(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): number {
  const at = l4 + l4CsumOffset6(proto);
  const field = (buf[at]! << 8) | buf[at + 1]!;
  const s = sum16(buf, l4, end, pseudoSum6(buf, l3 + 8, l3 + 24, proto, end - l4));
  let c = ~csumFold(s + (~field & 0xffff)) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  return c;
}

/** Computes and stores the full checksum (see `l4Checksum6`). */
export function l4SetChecksum6(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): void {
  const c = l4Checksum6(buf, l3, l4, end, proto);
  const at = l4 + l4CsumOffset6(proto);
  buf[at] = c >>> 8;
  buf[at + 1] = c & 0xff;
}

/** True when the message verifies against the pseudo-header. A UDP checksum of 0 is invalid over IPv6. */
export function l4ChecksumOk6(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): boolean {
  if (proto === 17 && buf[l4 + 6] === 0 && buf[l4 + 7] === 0) return false;
  return csumFold(sum16(buf, l4, end, pseudoSum6(buf, l3 + 8, l3 + 24, proto, end - l4))) === 0xffff;
}

/** What a partial (NEEDS_CSUM) field holds for this message: the folded pseudo-header sum, not complemented. */
export function l4PartialSeed6(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): number {
  return csumFold(pseudoSum6(buf, l3 + 8, l3 + 24, proto, end - l4));
}

/**
 * The one's-complement difference of replacing the 16 bytes at `buf[at]` by the address
 * `a[ai..ai+3]`: the sum of ~old + new over the eight 16-bit words, unfolded (< 2^20). Feed it to
 * `csumApplyDiff` (complete checksums) or `csumPartialApplyDiff` (NEEDS_CSUM seeds).
 */
export function addr6Diff(buf: Uint8Array, at: number, a: Uint32Array, ai: number): number {
  let s = 0;
  for (let w = 0; w < 4; w++, at += 4) {
    const v = a[ai + w]!;
    s += (~((buf[at]! << 8) | buf[at + 1]!) & 0xffff) + (~((buf[at + 2]! << 8) | buf[at + 3]!) & 0xffff);
    s += (v >>> 16) + (v & 0xffff);
  }
  return s;
}

/** RFC 1624 eq. 3 with a precomputed difference: the new complete checksum. */
export function csumApplyDiff(check: number, diff: number): number {
  return ~csumFold((~check & 0xffff) + csumFold(diff)) & 0xffff;
}

/** The partial-checksum rule with a precomputed difference: S' = S ⊕ diff, not complemented. */
export function csumPartialApplyDiff(seed: number, diff: number): number {
  return csumFold(seed + csumFold(diff));
}
