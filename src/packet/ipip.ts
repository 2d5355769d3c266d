// IPIP (IPv4-in-IPv4, protocol 4) encapsulation and decapsulation in place, using the slot headroom.

import { VNET_HDR_LEN } from '../io/port.ts';
import { writeIpv4Header } from './ipv4.ts';
import { vnetShift } from './vnet.ts';

/** Bytes an IPIP outer header adds. */
export const IPIP_HLEN = 20;

/**
 * Encapsulates the IPv4 frame at `off` (its vnet header) of `len` bytes: moves the vnet + Ethernet
 * header (VLAN tag kept) 20 bytes left into the headroom and writes an outer IPv4 header from `saddr`
 * (DIP) to `daddr` (RIP), protocol 4, TOS and DF copied from the inner header, with `ttl` and `id`.
 * csum_start/hdr_len of the vnet header move by 20 so a partial inner checksum still points right
 * (a GSO frame keeps its gso_type: the transmitter decides whether it can send it).
 * Returns the new frame start (off - 20; the length grows by 20), or -1 (nothing changed) when there
 * is no headroom, the frame is not IPv4, or the result would exceed 65535 bytes of IP.
 * Ethernet padding after the inner datagram, if any, stays after it.
 */
export function ipipEncap(
  buf: Uint8Array,
  off: number,
  len: number,
  saddr: number,
  daddr: number,
  ttl: number,
  id: number,
): number {
  const eth = off + VNET_HDR_LEN;
  if (off < IPIP_HLEN || eth + 14 > off + len || off + len > buf.length) return -1;
  let ehl = 14;
  if (buf[eth + 12] === 0x81 && buf[eth + 13] === 0x00) ehl = 18;
  const inner = eth + ehl;
  if (inner + 20 > off + len || buf[eth + ehl - 2] !== 0x08 || buf[eth + ehl - 1] !== 0x00) return -1;
  if (buf[inner]! >>> 4 !== 4) return -1;
  const innerLen = (buf[inner + 2]! << 8) | buf[inner + 3]!;
  if (innerLen + IPIP_HLEN > 0xffff || inner + innerLen > off + len) return -1;
  // Offsets that would wrap past 16 bits could not be shifted back by decap.
  if ((buf[off + 2]! | (buf[off + 3]! << 8)) + IPIP_HLEN > 0xffff) return -1;
  if ((buf[off]! & 1) !== 0 && (buf[off + 6]! | (buf[off + 7]! << 8)) + IPIP_HLEN > 0xffff) return -1;
  const nOff = off - IPIP_HLEN;
  buf.copyWithin(nOff, off, inner);
  vnetShift(buf, nOff, IPIP_HLEN);
  const df = buf[inner + 6]! & 0x40;
  writeIpv4Header(buf, inner - IPIP_HLEN, buf[inner + 1]!, innerLen + IPIP_HLEN, id, df << 8, ttl, 4, saddr, daddr);
  return nOff;
}

/**
 * Removes the outer IPv4 header (of its own IHL) of the IPIP frame at `off` of `len` bytes: moves
 * the vnet + Ethernet header right onto the inner datagram and shifts csum_start/hdr_len back.
 * Returns the new frame start (the length shrinks by the outer header length), or -1 (nothing
 * changed) when the frame is not IPv4 protocol 4 with a complete inner IPv4 header.
 */
export function ipipDecap(buf: Uint8Array, off: number, len: number): number {
  const eth = off + VNET_HDR_LEN;
  const end = off + len;
  if (off < 0 || eth + 14 > end || end > buf.length) return -1;
  let ehl = 14;
  if (buf[eth + 12] === 0x81 && buf[eth + 13] === 0x00) ehl = 18;
  const outer = eth + ehl;
  if (outer + 20 > end || buf[eth + ehl - 2] !== 0x08 || buf[eth + ehl - 1] !== 0x00) return -1;
  if (buf[outer]! >>> 4 !== 4 || buf[outer + 9] !== 4) return -1;
  const hlen = (buf[outer]! & 0x0f) << 2;
  if (hlen < 20 || outer + hlen + 20 > end || buf[outer + hlen]! >>> 4 !== 4) return -1;
  const nOff = off + hlen;
  buf.copyWithin(nOff, off, outer);
  vnetShift(buf, nOff, -hlen);
  return nOff;
}
