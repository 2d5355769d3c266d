// ICMPv6 (RFC 4443): echo replies in place, errors with their sending rules, and the datagram in an error read and rewritten for NAT.

import { csumReplace16, readU32, writeU16 } from './checksum.ts';
import { addr6Diff, csumApplyDiff, l4CsumOffset6, l4SetChecksum6 } from './checksum6.ts';
import { copyMac, macIsMulticast, swapEthAddrs, writeEthHeader } from './ethernet.ts';
import { IP6, NEXTHDR, addr6IsMulticast, addr6IsUnspecified, ipv6ExtHdr, writeAddr6, writeIpv6Header } from './ipv6.ts';
import { EXTHDR_MAX, PF6, type ParsedFrame6 } from './parse6.ts';
import { VNET_HDR_LEN, vnetClear } from './vnet.ts';

/** ICMPv6 types and codes used here. */
export const ICMP6 = {
  DEST_UNREACH: 1,
  PKT_TOOBIG: 2,
  TIME_EXCEED: 3,
  PARAMPROB: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICIT: 133,
  ROUTER_ADVERT: 134,
  NEIGH_SOLICIT: 135,
  NEIGH_ADVERT: 136,
  REDIRECT: 137,
  // DEST_UNREACH codes
  NOROUTE: 0,
  ADM_PROHIBITED: 1,
  ADDR_UNREACH: 3,
  PORT_UNREACH: 4,
  // TIME_EXCEED codes
  EXC_HOPLIMIT: 0,
  EXC_FRAGTIME: 1,
} as const;

/** Bytes of the original datagram an error may carry: the whole message stays within 1280 (RFC 4443 §2.4(c)). */
export const ICMP6_ERROR_EMBED_MAX = IP6.MIN_MTU - IP6.HLEN - 8;

/** Hop limit of the messages built here (the kernel's default ip6_default_hoplimit). */
export const ICMP6_HOPLIMIT = 64;

/** True for error types (the high bit of the type is clear: RFC 4443 §2.1). */
export function icmp6IsError(type: number): boolean {
  return type < 128;
}

/**
 * RFC 4443 §2.4(e), as the kernel's icmp6_send and is_ineligible apply it: whether an error of `type`
 * may be sent about the parsed datagram. Never about an ICMPv6 error or a redirect; never to a
 * source that does not name one node (:: or multicast); not about a datagram sent to a multicast
 * address or as a link-layer multicast/broadcast, except Packet Too Big (so path MTU discovery works
 * for multicast).
 */
export function icmp6ErrorAllowed(buf: Uint8Array, p: ParsedFrame6, type: number): boolean {
  if (p.ethertype !== 0x86dd || p.l3 === 0 || p.ipEnd === 0) return false;
  if (p.proto === NEXTHDR.ICMPV6 && (p.flags & PF6.L4) !== 0 && (icmp6IsError(p.icmpType) || p.icmpType === ICMP6.REDIRECT)) return false;
  const l3 = p.l3;
  if (addr6IsUnspecified(buf, l3 + 8) || addr6IsMulticast(buf, l3 + 8)) return false;
  if (type !== ICMP6.PKT_TOOBIG && (addr6IsMulticast(buf, l3 + 24) || macIsMulticast(buf, p.eth))) return false;
  return true;
}

/**
 * Builds an ICMPv6 error about the datagram at `origL3` (captured bytes to `origEnd`) into `dst` at
 * `dstOff`: zeroed vnet header, untagged Ethernet, IPv6 from `src[si..]` to the original source with
 * hop limit `hopLimit`, then type, code, the 32-bit `rest` (the MTU for Packet Too Big) and as much of
 * the original as keeps the message within 1280 bytes. `dst` may be `orig` and the frame may overlap
 * the original (the embedded bytes move first). Returns the frame length, or -1 when the original
 * has no complete IPv6 header or `dst` is too small.
 */
export function buildIcmp6Error(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  type: number,
  code: number,
  rest: number,
  src: Uint32Array,
  si: number,
  hopLimit: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  if (origEnd > orig.length) origEnd = orig.length;
  if (origL3 < 0 || origL3 + 40 > origEnd || orig[origL3]! >>> 4 !== 6) return -1;
  let embed = origEnd - origL3;
  if (embed > ICMP6_ERROR_EMBED_MAX) embed = ICMP6_ERROR_EMBED_MAX;
  const msgLen = 8 + embed;
  const l3 = dstOff + VNET_HDR_LEN + 14;
  const l4 = l3 + 40;
  const frameLen = VNET_HDR_LEN + 14 + 40 + msgLen;
  if (dstOff < 0 || dstOff + frameLen > dst.length) return -1;
  // The original's source becomes the destination: read it before anything moves.
  const d0 = readU32(orig, origL3 + 8);
  const d1 = readU32(orig, origL3 + 12);
  const d2 = readU32(orig, origL3 + 16);
  const d3 = readU32(orig, origL3 + 20);
  if (dst === orig) dst.copyWithin(l4 + 8, origL3, origL3 + embed);
  else for (let i = 0; i < embed; i++) dst[l4 + 8 + i] = orig[origL3 + i]!;
  // MACs may live in the frame being overwritten (a reply built in place): copy them through the
  // Ethernet header's own bytes only after both are read.
  const m = MAC_TMP;
  copyMac(m, 0, ethDst, ethDstOff);
  copyMac(m, 6, ethSrc, ethSrcOff);
  vnetClear(dst, dstOff);
  writeEthHeader(dst, dstOff + VNET_HDR_LEN, m, 0, m, 6, 0x86dd);
  const D = ADDR_TMP;
  D[0] = d0;
  D[1] = d1;
  D[2] = d2;
  D[3] = d3;
  writeIpv6Header(dst, l3, 0, 0, msgLen, NEXTHDR.ICMPV6, hopLimit, src, si, D, 0);
  dst[l4] = type;
  dst[l4 + 1] = code;
  dst[l4 + 2] = 0;
  dst[l4 + 3] = 0;
  dst[l4 + 4] = rest >>> 24;
  dst[l4 + 5] = (rest >>> 16) & 0xff;
  dst[l4 + 6] = (rest >>> 8) & 0xff;
  dst[l4 + 7] = rest & 0xff;
  l4SetChecksum6(dst, l3, l4, l4 + msgLen, NEXTHDR.ICMPV6);
  return frameLen;
}

const MAC_TMP = new Uint8Array(12);
const ADDR_TMP = new Uint32Array(4);

/** Packet Too Big (type 2) with the MTU the next link takes (for TUN: route MTU − 40); see `buildIcmp6Error`. */
export function buildPacketTooBig(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  mtu: number,
  src: Uint32Array,
  si: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmp6Error(dst, dstOff, orig, origL3, origEnd, ICMP6.PKT_TOOBIG, 0, mtu >>> 0, src, si, ICMP6_HOPLIMIT,
    ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/** Destination unreachable, port unreachable (type 1 code 4); see `buildIcmp6Error`. */
export function buildPortUnreachable6(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  src: Uint32Array,
  si: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmp6Error(dst, dstOff, orig, origL3, origEnd, ICMP6.DEST_UNREACH, ICMP6.PORT_UNREACH, 0, src, si,
    ICMP6_HOPLIMIT, ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/** Time exceeded, hop limit exceeded in transit (type 3 code 0); see `buildIcmp6Error`. */
export function buildTimeExceeded6(
  dst: Uint8Array,
  dstOff: number,
  orig: Uint8Array,
  origL3: number,
  origEnd: number,
  src: Uint32Array,
  si: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  ethSrc: Uint8Array,
  ethSrcOff: number,
): number {
  return buildIcmp6Error(dst, dstOff, orig, origL3, origEnd, ICMP6.TIME_EXCEED, ICMP6.EXC_HOPLIMIT, 0, src, si,
    ICMP6_HOPLIMIT, ethDst, ethDstOff, ethSrc, ethSrcOff);
}

/**
 * Turns the parsed echo request `p` into an echo reply in place: swaps MACs and addresses (which
 * leaves the pseudo-header sum unchanged), sets the hop limit, type 129, clears the vnet header and
 * updates the checksum for the type (a partial one is completed). Extension headers are kept as
 * received. Returns the reply's length from `p.frame`, or -1 when `p` is not an echo request.
 */
export function icmp6EchoReplyInPlace(buf: Uint8Array, p: ParsedFrame6, hopLimit: number): number {
  if (p.proto !== NEXTHDR.ICMPV6 || p.icmpType !== ICMP6.ECHO_REQUEST || (p.flags & PF6.L4) === 0) return -1;
  const l3 = p.l3;
  const l4 = p.l4;
  swapEthAddrs(buf, p.eth);
  for (let i = 8; i < 24; i++) {
    const t = buf[l3 + i]!;
    buf[l3 + i] = buf[l3 + 16 + i]!;
    buf[l3 + 16 + i] = t;
  }
  buf[l3 + 7] = hopLimit & 0xff;
  const code = buf[l4 + 1]!;
  buf[l4] = ICMP6.ECHO_REPLY;
  if ((p.flags & PF6.CSUM_PARTIAL) !== 0) {
    l4SetChecksum6(buf, l3, l4, p.ipEnd, NEXTHDR.ICMPV6);
  } else {
    const c = csumReplace16((buf[l4 + 2]! << 8) | buf[l4 + 3]!, (ICMP6.ECHO_REQUEST << 8) | code, (ICMP6.ECHO_REPLY << 8) | code);
    buf[l4 + 2] = c >>> 8;
    buf[l4 + 3] = c & 0xff;
  }
  vnetClear(buf, p.frame);
  for (let w = 0; w < 4; w++) {
    const t = p.saddr[w]!;
    p.saddr[w] = p.daddr[w]!;
    p.daddr[w] = t;
  }
  p.hopLimit = hopLimit & 0xff;
  p.icmpType = ICMP6.ECHO_REPLY;
  p.flags &= ~(PF6.NEEDS_CSUM | PF6.CSUM_PARTIAL | PF6.DATA_VALID | PF6.GSO);
  return p.ipEnd - p.frame;
}

/** The datagram embedded in an ICMPv6 error, filled by `parseIcmp6Inner` (allocate once, reuse). */
export class IcmpInner6 {
  /** Start of the embedded IPv6 header. */
  l3 = 0;
  /** Upper-layer protocol after the embedded extension headers (what was captured of them). */
  proto = 0;
  readonly saddr = new Uint32Array(4);
  readonly daddr = new Uint32Array(4);
  /** Start of the embedded upper-layer header (0 when the captured chain ends first). */
  l4 = 0;
  /** True for a non-first fragment (no ports inside). */
  fragment = false;
  /** True when the first 4 bytes of a TCP/UDP header (the ports) were captured. */
  hasPorts = false;
  sport = 0;
  dport = 0;
  /** Offset of the outer ICMPv6 checksum field. */
  icmpCheck = 0;
  /** One past the ICMPv6 message. */
  end = 0;
}

/**
 * Reads the datagram embedded in the parsed ICMPv6 error `p` (types 1–4) into `out`, walking its
 * extension headers as far as they were captured. Returns false when `p` is not such an error or the
 * embedded fixed header is truncated or not IPv6.
 */
export function parseIcmp6Inner(buf: Uint8Array, p: ParsedFrame6, out: IcmpInner6): boolean {
  if (p.proto !== NEXTHDR.ICMPV6 || (p.flags & PF6.L4) === 0 || !icmp6IsError(p.icmpType)) return false;
  const end = p.ipEnd;
  const l3 = p.l4 + 8;
  if (l3 + 40 > end || buf[l3]! >>> 4 !== 6) return false;
  out.l3 = l3;
  for (let w = 0; w < 4; w++) {
    out.saddr[w] = readU32(buf, l3 + 8 + 4 * w);
    out.daddr[w] = readU32(buf, l3 + 24 + 4 * w);
  }
  out.icmpCheck = p.l4 + 2;
  out.end = end;
  out.fragment = false;
  out.hasPorts = false;
  out.sport = 0;
  out.dport = 0;
  out.l4 = 0;
  let nh = buf[l3 + 6]!;
  let at = l3 + 40;
  let n = 0;
  while (ipv6ExtHdr(nh) && nh !== NEXTHDR.NONE) {
    if (++n > EXTHDR_MAX || at + 8 > end) {
      out.proto = nh;
      return true;
    }
    const next = buf[at]!;
    if (nh === NEXTHDR.FRAGMENT) {
      if ((((buf[at + 2]! << 8) | buf[at + 3]!) & 0xfff8) !== 0) out.fragment = true;
      at += 8;
    } else if (nh === NEXTHDR.AUTH) {
      at += (buf[at + 1]! + 2) << 2;
    } else {
      at += (buf[at + 1]! + 1) << 3;
    }
    nh = next;
  }
  out.proto = nh;
  if (at > end) return true;
  out.l4 = at;
  out.hasPorts = !out.fragment && (nh === 6 || nh === 17) && at + 4 <= end;
  if (out.hasPorts) {
    out.sport = (buf[at]! << 8) | buf[at + 1]!;
    out.dport = (buf[at + 2]! << 8) | buf[at + 3]!;
  }
  return true;
}

/** Offset of the embedded TCP/UDP/ICMPv6 checksum field when captured, else -1. */
function innerL4Check(inner: IcmpInner6): number {
  if (inner.l4 === 0 || inner.fragment) return -1;
  const co = l4CsumOffset6(inner.proto);
  if (co < 0) return -1;
  const at = inner.l4 + co;
  return at + 2 <= inner.end ? at : -1;
}

function innerSetAddr(buf: Uint8Array, inner: IcmpInner6, field: number, a: Uint32Array, ai: number): void {
  const at = inner.l3 + field;
  const diff = addr6Diff(buf, at, a, ai);
  writeAddr6(buf, at, a, ai);
  const ck = inner.icmpCheck;
  // The address bytes are part of the ICMPv6 body.
  let outer = csumApplyDiff((buf[ck]! << 8) | buf[ck + 1]!, diff);
  const ca = innerL4Check(inner);
  if (ca >= 0) {
    const c = (buf[ca]! << 8) | buf[ca + 1]!;
    if (!(inner.proto === 17 && c === 0)) {
      let nc = csumApplyDiff(c, diff);
      if (inner.proto === 17 && nc === 0) nc = 0xffff;
      writeU16(buf, ca, nc);
      outer = csumReplace16(outer, c, nc);
    }
  }
  writeU16(buf, ck, outer);
}

function innerSetPort(buf: Uint8Array, inner: IcmpInner6, field: number, port: number): void {
  if (!inner.hasPorts) return;
  const at = inner.l4 + field;
  const old = (buf[at]! << 8) | buf[at + 1]!;
  if (old === port) return;
  const ck = inner.icmpCheck;
  writeU16(buf, at, port);
  let outer = csumReplace16((buf[ck]! << 8) | buf[ck + 1]!, old, port);
  const ca = innerL4Check(inner);
  if (ca >= 0) {
    const c = (buf[ca]! << 8) | buf[ca + 1]!;
    if (!(inner.proto === 17 && c === 0)) {
      let nc = csumReplace16(c, old, port);
      if (inner.proto === 17 && nc === 0) nc = 0xffff;
      writeU16(buf, ca, nc);
      outer = csumReplace16(outer, c, nc);
    }
  }
  writeU16(buf, ck, outer);
}

/**
 * Rewrites the embedded datagram's source address, keeping its captured L4 checksum and the outer
 * ICMPv6 checksum right. The outer header is the caller's (setDaddr6/setSaddr6 with proto 58 keep the
 * outer checksum right for the outer pseudo-header).
 */
export function icmp6InnerSetSaddr(buf: Uint8Array, inner: IcmpInner6, a: Uint32Array, ai: number): void {
  innerSetAddr(buf, inner, 8, a, ai);
  for (let w = 0; w < 4; w++) inner.saddr[w] = a[ai + w]!;
}

/** As `icmp6InnerSetSaddr`, for the embedded destination address. */
export function icmp6InnerSetDaddr(buf: Uint8Array, inner: IcmpInner6, a: Uint32Array, ai: number): void {
  innerSetAddr(buf, inner, 24, a, ai);
  for (let w = 0; w < 4; w++) inner.daddr[w] = a[ai + w]!;
}

/** Rewrites the embedded TCP/UDP source port (no-op when the ports were not captured). */
export function icmp6InnerSetSport(buf: Uint8Array, inner: IcmpInner6, port: number): void {
  innerSetPort(buf, inner, 0, port & 0xffff);
  if (inner.hasPorts) inner.sport = port & 0xffff;
}

/** Rewrites the embedded TCP/UDP destination port (no-op when the ports were not captured). */
export function icmp6InnerSetDport(buf: Uint8Array, inner: IcmpInner6, port: number): void {
  innerSetPort(buf, inner, 2, port & 0xffff);
  if (inner.hasPorts) inner.dport = port & 0xffff;
}
