// In-place NAT rewrites of addresses and ports that keep the IPv4 and TCP/UDP checksums right.

import { csumPartialReplace32, sum16, csumReplace16, csumReplace32, readU32, writeU32 } from './checksum.ts';
import { PF, type ParsedFrame } from './parse.ts';

/**
 * Updates the TCP/UDP checksum field at `at` for a changed 32-bit pseudo-header word (an address).
 * Partial (NEEDS_CSUM): seed ⊕ ~old ⊕ new, not complemented. Complete: RFC 1624; UDP 0 (no
 * checksum) stays 0 and a result of 0 becomes 0xffff.
 */
function l4AddrFix(buf: Uint8Array, at: number, udp: boolean, partial: boolean, oldv: number, newv: number): void {
  const c = (buf[at]! << 8) | buf[at + 1]!;
  let n: number;
  if (partial) {
    n = csumPartialReplace32(c, oldv, newv);
  } else {
    if (udp && c === 0) return;
    n = csumReplace32(c, oldv, newv);
    if (udp && n === 0) n = 0xffff;
  }
  buf[at] = n >>> 8;
  buf[at + 1] = n & 0xff;
}

function setAddr(
  buf: Uint8Array,
  l3: number,
  l4: number,
  proto: number,
  partial: boolean,
  field: number,
  addr: number,
): void {
  const oldv = readU32(buf, l3 + field);
  if (oldv === addr) return;
  const c = csumReplace32((buf[l3 + 10]! << 8) | buf[l3 + 11]!, oldv, addr);
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c & 0xff;
  writeU32(buf, l3 + field, addr);
  if (l4 < 0) return;
  if (proto === 6) l4AddrFix(buf, l4 + 16, false, partial, oldv, addr);
  else if (proto === 17) l4AddrFix(buf, l4 + 6, true, partial, oldv, addr);
}

/**
 * Sets the IPv4 destination address of the datagram at `l3`, updating the header checksum and, when
 * `l4 >= 0` and the protocol is TCP or UDP, the L4 checksum (`partial`: the field holds a NEEDS_CSUM
 * seed). Pass l4 = -1 for non-first fragments (no L4 header). ICMP has no pseudo-header: untouched.
 */
export function setDaddr(buf: Uint8Array, l3: number, l4: number, proto: number, addr: number, partial: boolean): void {
  setAddr(buf, l3, l4, proto, partial, 16, addr);
}

/** Sets the IPv4 source address; same rules as `setDaddr`. */
export function setSaddr(buf: Uint8Array, l3: number, l4: number, proto: number, addr: number, partial: boolean): void {
  setAddr(buf, l3, l4, proto, partial, 12, addr);
}

function setPort(buf: Uint8Array, l4: number, proto: number, partial: boolean, field: number, port: number): void {
  const at = l4 + field;
  const oldp = (buf[at]! << 8) | buf[at + 1]!;
  if (oldp === port) return;
  buf[at] = (port >>> 8) & 0xff;
  buf[at + 1] = port & 0xff;
  // A partial checksum covers the ports in the final pass over the segment: leave the seed alone.
  if (partial) return;
  const ca = l4 + (proto === 6 ? 16 : 6);
  const c = (buf[ca]! << 8) | buf[ca + 1]!;
  if (proto === 17 && c === 0) return;
  let n = csumReplace16(c, oldp, port);
  if (proto === 17 && n === 0) n = 0xffff;
  buf[ca] = n >>> 8;
  buf[ca + 1] = n & 0xff;
}

/** Sets the TCP/UDP destination port at `l4`, updating a complete checksum; a partial one is left as is. */
export function setDport(buf: Uint8Array, l4: number, proto: number, port: number, partial: boolean): void {
  setPort(buf, l4, proto, partial, 2, port);
}

/** Sets the TCP/UDP source port; same rules as `setDport`. */
export function setSport(buf: Uint8Array, l4: number, proto: number, port: number, partial: boolean): void {
  setPort(buf, l4, proto, partial, 0, port);
}

/** `setDaddr` for a parsed frame: uses its offsets and checksum state, and updates `p.daddr`. */
export function frameSetDaddr(buf: Uint8Array, p: ParsedFrame, addr: number): void {
  setAddr(buf, p.l3, (p.flags & PF.L4) !== 0 ? p.l4 : -1, p.proto, (p.flags & PF.CSUM_PARTIAL) !== 0, 16, addr);
  p.daddr = addr;
}

/** `setSaddr` for a parsed frame; updates `p.saddr`. */
export function frameSetSaddr(buf: Uint8Array, p: ParsedFrame, addr: number): void {
  setAddr(buf, p.l3, (p.flags & PF.L4) !== 0 ? p.l4 : -1, p.proto, (p.flags & PF.CSUM_PARTIAL) !== 0, 12, addr);
  p.saddr = addr;
}

/** `setDport` for a parsed TCP/UDP frame with its L4 header (PF.L4); otherwise does nothing. */
export function frameSetDport(buf: Uint8Array, p: ParsedFrame, port: number): void {
  if ((p.flags & PF.L4) === 0 || (p.proto !== 6 && p.proto !== 17)) return;
  setPort(buf, p.l4, p.proto, (p.flags & PF.CSUM_PARTIAL) !== 0, 2, port);
  p.dport = port;
}

/** `setSport` for a parsed TCP/UDP frame with its L4 header (PF.L4); otherwise does nothing. */
export function frameSetSport(buf: Uint8Array, p: ParsedFrame, port: number): void {
  if ((p.flags & PF.L4) === 0 || (p.proto !== 6 && p.proto !== 17)) return;
  setPort(buf, p.l4, p.proto, (p.flags & PF.CSUM_PARTIAL) !== 0, 0, port);
  p.sport = port;
}

/**
 * Finishes a partial checksum the way the kernel's skb_checksum_help does: sums from csum_start to
 * the end of the frame, folds, complements (0 becomes 0xffff) and stores at csum_start + csum_offset,
 * then clears NEEDS_CSUM. For ports that cannot hand partial checksums to the kernel. `off`/`len` as
 * for parseFrame. Returns false (and changes nothing) when the header's offsets fall outside the
 * frame; true when done or when there was nothing to do. Not for GSO frames (segment them first).
 */
export function completePartialChecksum(buf: Uint8Array, off: number, len: number): boolean {
  if ((buf[off]! & 1) === 0) return true;
  let end = off + len;
  if (end > buf.length) end = buf.length;
  const eth = off + 10;
  const start = eth + (buf[off + 6]! | (buf[off + 7]! << 8));
  const at = start + (buf[off + 8]! | (buf[off + 9]! << 8));
  if (start >= end || at + 2 > end) return false;
  let c = ~sum16(buf, start, end, 0) & 0xffff;
  if (c === 0) c = 0xffff;
  buf[at] = c >>> 8;
  buf[at + 1] = c & 0xff;
  buf[off] = buf[off]! & ~1;
  return true;
}
