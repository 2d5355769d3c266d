// IPv6-in-IPv6 (next header 41) encapsulation and decapsulation in place, as IPVS's TUN transmitter does for IPv6 real servers.

import { EXTHDR_MAX } from './parse6.ts';
import { writeIpv6Header } from './ipv6.ts';
import { VNET_HDR_LEN, vnetShift } from './vnet.ts';

/** Bytes an ip6ip6 outer header adds. */
export const IP6IP6_HLEN = 40;

function ethLen(buf: Uint8Array, eth: number): number {
  return buf[eth + 12] === 0x81 && buf[eth + 13] === 0x00 ? 18 : 14;
}

/**
 * Encapsulates the IPv6 frame at `off` (its vnet header) of `len` bytes: moves the vnet + Ethernet
 * header (VLAN tag kept) 40 bytes left into the headroom and writes an outer IPv6 header from
 * `src[si..]` (DIP) to `dst[di..]` (RIP) with next header 41, as ip_vs_tunnel_xmit_v6 builds it:
 * traffic class and hop limit copied from the inner header, flow label 0, payload length = the inner
 * datagram. csum_start/hdr_len move by 40 so a partial inner checksum still points right (a GSO frame
 * keeps its gso_type: the transmitter decides whether it can send it).
 * Returns the new frame start (off - 40), or -1 (nothing changed) without headroom, when the frame
 * is not IPv6, its payload length is 0 (a BIG TCP super-segment), or the result would pass 65535.
 */
export function ip6ip6Encap(
  buf: Uint8Array,
  off: number,
  len: number,
  src: Uint32Array,
  si: number,
  dst: Uint32Array,
  di: number,
): number {
  const eth = off + VNET_HDR_LEN;
  if (off < IP6IP6_HLEN || eth + 14 > off + len || off + len > buf.length) return -1;
  const ehl = ethLen(buf, eth);
  const inner = eth + ehl;
  if (inner + 40 > off + len || buf[eth + ehl - 2] !== 0x86 || buf[eth + ehl - 1] !== 0xdd) return -1;
  if (buf[inner]! >>> 4 !== 6) return -1;
  const plen = (buf[inner + 4]! << 8) | buf[inner + 5]!;
  if (plen === 0 || plen + IP6IP6_HLEN > 0xffff || inner + 40 + plen > off + len) return -1;
  if ((buf[off + 2]! | (buf[off + 3]! << 8)) + IP6IP6_HLEN > 0xffff) return -1;
  if ((buf[off]! & 1) !== 0 && (buf[off + 6]! | (buf[off + 7]! << 8)) + IP6IP6_HLEN > 0xffff) return -1;
  const tclass = ((buf[inner]! & 0x0f) << 4) | (buf[inner + 1]! >>> 4);
  const hop = buf[inner + 7]!;
  const nOff = off - IP6IP6_HLEN;
  buf.copyWithin(nOff, off, inner);
  vnetShift(buf, nOff, IP6IP6_HLEN);
  writeIpv6Header(buf, inner - IP6IP6_HLEN, tclass, 0, plen + 40, 41, hop, src, si, dst, di);
  return nOff;
}

/**
 * Removes the outer IPv6 header of the ip6ip6 frame at `off` of `len` bytes, together with any
 * hop-by-hop / destination-options headers before next header 41 (a Linux ip6tnl sender adds a
 * destination option with the tunnel encapsulation limit): moves the vnet + Ethernet header right
 * onto the inner datagram and shifts csum_start/hdr_len back. Returns the new frame start, or -1
 * (nothing changed) when the frame is not IPv6 carrying a complete inner IPv6 header, is fragmented,
 * or its chain is malformed.
 */
export function ip6ip6Decap(buf: Uint8Array, off: number, len: number): number {
  const eth = off + VNET_HDR_LEN;
  const end = off + len;
  if (off < 0 || eth + 14 > end || end > buf.length) return -1;
  const ehl = ethLen(buf, eth);
  const outer = eth + ehl;
  if (outer + 40 > end || buf[eth + ehl - 2] !== 0x86 || buf[eth + ehl - 1] !== 0xdd) return -1;
  if (buf[outer]! >>> 4 !== 6) return -1;
  let nh = buf[outer + 6]!;
  let at = outer + 40;
  for (let n = 0; nh !== 41; n++) {
    if ((nh !== 0 && nh !== 60) || (nh === 0 && n !== 0) || n >= EXTHDR_MAX || at + 8 > end) return -1;
    const hlen = (buf[at + 1]! + 1) << 3;
    nh = buf[at]!;
    at += hlen;
  }
  if (at + 40 > end || buf[at]! >>> 4 !== 6) return -1;
  const hlen = at - outer;
  const nOff = off + hlen;
  buf.copyWithin(nOff, off, outer);
  vnetShift(buf, nOff, -hlen);
  return nOff;
}
