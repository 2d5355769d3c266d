// ICMP: echo replies in place, error messages (unreachable, fragmentation needed, time exceeded) and
// the original datagram embedded in an error, read and rewritten with both checksums kept right.

import { VNET_HDR_LEN } from '../io/port.ts';
import { csumReplace16, csumReplace32, icmpSetChecksum, readU32 } from './checksum.ts';
import { macIsMulticast, swapEthAddrs, writeEthHeader } from './ethernet.ts';
import { ipv4IsSpecialSource, writeIpv4Header } from './ipv4.ts';
import { PF, type ParsedFrame } from './parse.ts';
import { vnetClear } from './vnet.ts';

/** ICMP types and codes used here. */
export const ICMP = {
  ECHO_REPLY: 0,
  DEST_UNREACH: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROB: 12,
  // DEST_UNREACH codes
  NET_UNREACH: 0,
  HOST_UNREACH: 1,
  PROT_UNREACH: 2,
  PORT_UNREACH: 3,
  FRAG_NEEDED: 4,
  // TIME_EXCEEDED codes
  EXC_TTL: 0,
  EXC_FRAGTIME: 1,
} as const;

/** True for ICMP types that report an error about an embedded datagram. */
export function icmpIsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Turns the parsed echo request `p` into an echo reply in place: swaps MACs and IP addresses, sets
 * TTL to `ttl`, type 0, clears the vnet header and updates both checksums incrementally. IP options
 * are kept as received. Returns the reply's length from `p.frame` (Ethernet padding dropped), or -1
 * when `p` is not an echo request with its ICMP header.
 */
export function icmpEchoReplyInPlace(buf: Uint8Array, p: ParsedFrame, ttl: number): number {
  if (p.proto !== 1 || p.icmpType !== ICMP.ECHO || (p.flags & PF.L4) === 0) return -1;
  const l3 = p.l3;
  const l4 = p.l4;
  vnetClear(buf, p.frame);
  swapEthAddrs(buf, p.eth);
  // Swapping the two addresses leaves the header sum unchanged; only the TTL word moves.
  for (let i = 0; i < 4; i++) {
    const t = buf[l3 + 12 + i]!;
    buf[l3 + 12 + i] = buf[l3 + 16 + i]!;
    buf[l3 + 16 + i] = t;
  }
  const oldTtlWord = (buf[l3 + 8]! << 8) | buf[l3 + 9]!;
  const newTtlWord = ((ttl & 0xff) << 8) | buf[l3 + 9]!;
  let c = csumReplace16((buf[l3 + 10]! << 8) | buf[l3 + 11]!, oldTtlWord, newTtlWord);
  buf[l3 + 8] = ttl & 0xff;
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c & 0xff;
  const code = buf[l4 + 1]!;
  c = csumReplace16((buf[l4 + 2]! << 8) | buf[l4 + 3]!, (ICMP.ECHO << 8) | code, (ICMP.ECHO_REPLY << 8) | code);
  buf[l4] = ICMP.ECHO_REPLY;
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
  const s = p.saddr;
  p.saddr = p.daddr;
  p.daddr = s;
  p.ttl = ttl & 0xff;
  p.icmpType = ICMP.ECHO_REPLY;
  return p.ipEnd - p.frame;
}

/**
 * RFC 1122 3.2.2 / RFC 1812 4.3.2.7: whether an ICMP error may be sent about the parsed datagram.
 * Not about ICMP errors, non-first fragments, link-layer or IP broadcast/multicast destinations, or
 * sources that do not name one host.
 */
export function icmpErrorAllowed(buf: Uint8Array, p: ParsedFrame): boolean {
  if (p.ethertype !== 0x0800 || p.ipHdrLen < 20) return false;
  if (p.fragOff !== 0) return false;
  if (p.proto === 1) {
    if ((p.flags & PF.L4) === 0 || icmpIsError(p.icmpType)) return false;
  }
  if (macIsMulticast(buf, p.eth)) return false;
  const d = p.daddr;
  if (d === 0xffffffff || (d >>> 28) === 0xe) return false;
  return !ipv4IsSpecialSource(p.saddr);
}

/**
 * Builds an ICMP error frame about the datagram at `origL3` (its captured bytes end at `origEnd`) into
 * `dst` at `dstOff`: a zeroed vnet header, an untagged Ethernet header, an IPv4 header from `saddr`
 * to the original source, and the ICMP message embedding the original header + up to 8 payload bytes.
 * `rest` is the 32-bit rest-of-header word (the next-hop MTU for FRAG_NEEDED, else 0). TOS follows
 * the original's with precedence "internetwork control", as routers do. Returns the frame length
 * (vnet header included), or -1 when the original header is unusable or `dst` is too small.
 */
export function buildIcmpError(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  type: number,
  code: number,
  rest: number,
  saddr: number,
  id: number,
  ttl: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  if (origEnd > orig.length) origEnd = orig.length;
  if (origL3 < 0 || origL3 + 20 > origEnd || orig[origL3]! >>> 4 !== 4) return -1;
  const hlen = (orig[origL3]! & 0x0f) << 2;
  if (hlen < 20 || origL3 + hlen > origEnd) return -1;
  const totLen = (orig[origL3 + 2]! << 8) | orig[origL3 + 3]!;
  let embed = hlen + 8;
  if (embed > totLen && totLen >= hlen) embed = totLen;
  if (origL3 + embed > origEnd) embed = origEnd - origL3;
  const icmpLen = 8 + embed;
  const frameLen = VNET_HDR_LEN + 14 + 20 + icmpLen;
  if (dstOff < 0 || dstOff + frameLen > dst.length) return -1;

  vnetClear(dst, dstOff);
  const l3 = writeEthHeader(dst, dstOff + VNET_HDR_LEN, ethDst, ethDstOff, ethSrc, ethSrcOff, 0x0800);
  const tos = (orig[origL3 + 1]! & 0x1e) | 0xc0;
  const l4 = writeIpv4Header(dst, l3, tos, 20 + icmpLen, id, 0, ttl, 1, saddr, readU32(orig, origL3 + 12));
  dst[l4] = type;
  dst[l4 + 1] = code;
  dst[l4 + 2] = 0;
  dst[l4 + 3] = 0;
  dst[l4 + 4] = rest >>> 24;
  dst[l4 + 5] = (rest >>> 16) & 0xff;
  dst[l4 + 6] = (rest >>> 8) & 0xff;
  dst[l4 + 7] = rest & 0xff;
  if (dst === orig && l4 + 8 > origL3) dst.copyWithin(l4 + 8, origL3, origL3 + embed);
  else for (let i = 0; i < embed; i++) dst[l4 + 8 + i] = orig[origL3 + i]!;
  icmpSetChecksum(dst, l4, l4 + icmpLen);
  return frameLen;
}

/** Fragmentation needed (type 3 code 4) with the next-hop MTU; see `buildIcmpError`. */
export function buildFragNeeded(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  mtu: number,
  saddr: number,
  id: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmpError(dst, dstOff, orig, origL3, origEnd, ICMP.DEST_UNREACH, ICMP.FRAG_NEEDED, mtu & 0xffff,
    saddr, id, 64, ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/** Time exceeded in transit (type 11 code 0); see `buildIcmpError`. */
export function buildTimeExceeded(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  saddr: number,
  id: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmpError(dst, dstOff, orig, origL3, origEnd, ICMP.TIME_EXCEEDED, ICMP.EXC_TTL, 0,
    saddr, id, 64, ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/** Port unreachable (type 3 code 3); see `buildIcmpError`. */
export function buildPortUnreachable(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  saddr: number,
  id: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmpError(dst, dstOff, orig, origL3, origEnd, ICMP.DEST_UNREACH, ICMP.PORT_UNREACH, 0,
    saddr, id, 64, ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/** The datagram embedded in an ICMP error, filled by `parseIcmpInner` (allocate once, reuse). */
export class IcmpInner {
  /** Start of the embedded IPv4 header. */
  l3 = 0;
  hdrLen = 0;
  proto = 0;
  saddr = 0;
  daddr = 0;
  /** Start of the embedded L4 header (l3 + hdrLen). */
  l4 = 0;
  /** True when the first 4 bytes of a TCP/UDP header (the ports) are present. */
  hasPorts = false;
  sport = 0;
  dport = 0;
  /** Offset of the outer ICMP checksum field. */
  icmpCheck = 0;
  /** One past the last byte of the ICMP message. */
  end = 0;
}

/**
 * Reads the datagram embedded in the parsed ICMP error `p` (types 3, 4, 5, 11, 12) into `out`.
 * Returns false when `p` is not such an error or the embedded header is truncated or not IPv4.
 */
export function parseIcmpInner(buf: Uint8Array, p: ParsedFrame, out: IcmpInner): boolean {
  if (p.proto !== 1 || (p.flags & PF.L4) === 0 || !icmpIsError(p.icmpType)) return false;
  const end = p.ipEnd;
  const l3 = p.l4 + 8;
  if (l3 + 20 > end || buf[l3]! >>> 4 !== 4) return false;
  const hlen = (buf[l3]! & 0x0f) << 2;
  if (hlen < 20 || l3 + hlen > end) return false;
  out.l3 = l3;
  out.hdrLen = hlen;
  out.proto = buf[l3 + 9]!;
  out.saddr = readU32(buf, l3 + 12);
  out.daddr = readU32(buf, l3 + 16);
  out.l4 = l3 + hlen;
  out.icmpCheck = p.l4 + 2;
  out.end = end;
  const first = (((buf[l3 + 6]! << 8) | buf[l3 + 7]!) & 0x1fff) === 0;
  out.hasPorts = first && (out.proto === 6 || out.proto === 17) && out.l4 + 4 <= end;
  out.sport = out.hasPorts ? (buf[out.l4]! << 8) | buf[out.l4 + 1]! : 0;
  out.dport = out.hasPorts ? (buf[out.l4 + 2]! << 8) | buf[out.l4 + 3]! : 0;
  return true;
}

/** Writes a 16-bit word inside the ICMP message and updates the ICMP checksum for it (RFC 1624). */
function icmpPut16(buf: Uint8Array, check: number, at: number, v: number): void {
  const old = (buf[at]! << 8) | buf[at + 1]!;
  if (old === v) return;
  buf[at] = v >>> 8;
  buf[at + 1] = v & 0xff;
  const c = csumReplace16((buf[check]! << 8) | buf[check + 1]!, old, v);
  buf[check] = c >>> 8;
  buf[check + 1] = c & 0xff;
}

/** Offset of the embedded L4 checksum field when it was captured, else -1. */
function innerL4Check(inner: IcmpInner): number {
  if (!inner.hasPorts) return -1;
  const at = inner.l4 + (inner.proto === 6 ? 16 : 6);
  return at + 2 <= inner.end ? at : -1;
}

function innerSetAddr(buf: Uint8Array, inner: IcmpInner, field: number, addr: number): void {
  const l3 = inner.l3;
  const oldv = readU32(buf, l3 + field);
  if (oldv === addr) return;
  const ck = inner.icmpCheck;
  icmpPut16(buf, ck, l3 + field, addr >>> 16);
  icmpPut16(buf, ck, l3 + field + 2, addr & 0xffff);
  icmpPut16(buf, ck, l3 + 10, csumReplace32((buf[l3 + 10]! << 8) | buf[l3 + 11]!, oldv, addr));
  const at = innerL4Check(inner);
  if (at >= 0) {
    const c = (buf[at]! << 8) | buf[at + 1]!;
    if (inner.proto === 17 && c === 0) return;
    let n = csumReplace32(c, oldv, addr);
    if (inner.proto === 17 && n === 0) n = 0xffff;
    icmpPut16(buf, ck, at, n);
  }
}

function innerSetPort(buf: Uint8Array, inner: IcmpInner, field: number, port: number): void {
  if (!inner.hasPorts) return;
  const at = inner.l4 + field;
  const old = (buf[at]! << 8) | buf[at + 1]!;
  if (old === port) return;
  const ck = inner.icmpCheck;
  icmpPut16(buf, ck, at, port & 0xffff);
  const cat = innerL4Check(inner);
  if (cat >= 0) {
    const c = (buf[cat]! << 8) | buf[cat + 1]!;
    if (inner.proto === 17 && c === 0) return;
    let n = csumReplace16(c, old, port & 0xffff);
    if (inner.proto === 17 && n === 0) n = 0xffff;
    icmpPut16(buf, ck, cat, n);
  }
}

/**
 * Rewrites the embedded datagram's source address, keeping its header checksum, its captured L4
 * checksum (when the embedded bytes include it) and the outer ICMP checksum right. The outer IPv4
 * header is the caller's (use setDaddr/setSaddr, which leave ICMP checksums alone).
 */
export function icmpInnerSetSaddr(buf: Uint8Array, inner: IcmpInner, addr: number): void {
  innerSetAddr(buf, inner, 12, addr);
  inner.saddr = addr;
}

/** As `icmpInnerSetSaddr`, for the embedded destination address. */
export function icmpInnerSetDaddr(buf: Uint8Array, inner: IcmpInner, addr: number): void {
  innerSetAddr(buf, inner, 16, addr);
  inner.daddr = addr;
}

/** Rewrites the embedded TCP/UDP source port (no-op when the ports were not captured). */
export function icmpInnerSetSport(buf: Uint8Array, inner: IcmpInner, port: number): void {
  innerSetPort(buf, inner, 0, port);
  if (inner.hasPorts) inner.sport = port;
}

/** Rewrites the embedded TCP/UDP destination port (no-op when the ports were not captured). */
export function icmpInnerSetDport(buf: Uint8Array, inner: IcmpInner, port: number): void {
  innerSetPort(buf, inner, 2, port);
  if (inner.hasPorts) inner.dport = port;
}

