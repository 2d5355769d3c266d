// IPv4 header: field offsets, flags and fragments, TTL decrement, header writing, address text forms.

import { csumReplace16, ipv4SetChecksum, readU32, writeU32 } from './checksum.ts';

/** Field offsets inside an IPv4 header. */
export const IP4 = {
  VER_IHL: 0,
  TOS: 1,
  TOT_LEN: 2,
  ID: 4,
  FRAG: 6,
  TTL: 8,
  PROTO: 9,
  CHECK: 10,
  SADDR: 12,
  DADDR: 16,
  /** Flag bits of the 16-bit fragment field. */
  F_DF: 0x4000,
  F_MF: 0x2000,
  OFFSET_MASK: 0x1fff,
  MIN_HLEN: 20,
} as const;

/** IP protocol numbers used here. */
export const IPPROTO = { ICMP: 1, IPIP: 4, TCP: 6, UDP: 17 } as const;

/** Header length in bytes (IHL × 4). */
export function ipv4HeaderLen(buf: Uint8Array, l3: number): number {
  return (buf[l3]! & 0x0f) << 2;
}

/** Total length field. */
export function ipv4TotLen(buf: Uint8Array, l3: number): number {
  return (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
}

/** Source address as uint32. */
export function ipv4Saddr(buf: Uint8Array, l3: number): number {
  return readU32(buf, l3 + IP4.SADDR);
}

/** Destination address as uint32. */
export function ipv4Daddr(buf: Uint8Array, l3: number): number {
  return readU32(buf, l3 + IP4.DADDR);
}

/**
 * Decrements the TTL with an incremental header-checksum update (RFC 1624). Returns the new TTL;
 * a TTL of 0 or 1 is left untouched and 0 is returned, so the caller sends time-exceeded instead.
 */
export function ipv4DecTtl(buf: Uint8Array, l3: number): number {
  const ttl = buf[l3 + 8]!;
  if (ttl <= 1) return 0;
  const proto = buf[l3 + 9]!;
  const c = csumReplace16((buf[l3 + 10]! << 8) | buf[l3 + 11]!, (ttl << 8) | proto, ((ttl - 1) << 8) | proto);
  buf[l3 + 8] = ttl - 1;
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c & 0xff;
  return ttl - 1;
}

/**
 * Writes a 20-byte IPv4 header (no options) at `l3` with its checksum. `frag` is the raw 16-bit
 * flags+offset field (e.g. IP4.F_DF). Returns the L4 offset.
 */
export function writeIpv4Header(
  buf: Uint8Array,
  l3: number,
  tos: number,
  totLen: number,
  id: number,
  frag: number,
  ttl: number,
  proto: number,
  saddr: number,
  daddr: number,
): number {
  buf[l3] = 0x45;
  buf[l3 + 1] = tos & 0xff;
  buf[l3 + 2] = (totLen >>> 8) & 0xff;
  buf[l3 + 3] = totLen & 0xff;
  buf[l3 + 4] = (id >>> 8) & 0xff;
  buf[l3 + 5] = id & 0xff;
  buf[l3 + 6] = (frag >>> 8) & 0xff;
  buf[l3 + 7] = frag & 0xff;
  buf[l3 + 8] = ttl & 0xff;
  buf[l3 + 9] = proto & 0xff;
  writeU32(buf, l3 + 12, saddr);
  writeU32(buf, l3 + 16, daddr);
  ipv4SetChecksum(buf, l3, 20);
  return l3 + 20;
}

/** Parses dotted-quad text to a uint32; -1 when malformed (slow path). */
export function ipv4FromString(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

/** Formats a uint32 address as dotted quad (slow path). */
export function ipv4ToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** True for addresses an ICMP error must never be sent to or about as source (RFC 1122 3.2.2). */
export function ipv4IsSpecialSource(a: number): boolean {
  const top = a >>> 24;
  return a === 0 || a === 0xffffffff || top === 127 || (top & 0xf0) === 0xe0 || top === 0;
}
