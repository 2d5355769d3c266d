// The IPv6 frame parser: vnet header, Ethernet/802.1Q, the fixed header, the extension-header chain, TCP/UDP/ICMPv6, into a reused object.

import { readU32 } from './checksum.ts';
import { l4ChecksumOk6, l4CsumOffset6 } from './checksum6.ts';
import { NEXTHDR, ipv6ExtHdr, readAddr6 } from './ipv6.ts';
import { PARSE, Verdict } from './parse.ts';
import { VNET, VNET_HDR_LEN } from './vnet.ts';

/**
 * Most extension headers one datagram may carry before it is refused (Verdict.BAD_EXTHDR). RFC 8200
 * §4.1 recommends each header at most once (destination options twice), so a legitimate chain has at
 * most seven; the cap bounds the walk against a hostile chain of many small headers.
 */
export const EXTHDR_MAX = 8;

/** Bits of `ParsedFrame6.flags`; those shared with IPv4's PF have the same values. */
export const PF6 = {
  VLAN: 0x1,
  /** At least one extension header precedes the upper layer. */
  EXTHDR: 0x2,
  /** A fragment header with a non-zero offset or M set (an atomic fragment, RFC 6946, is not one). */
  FRAGMENT: 0x4,
  /** A TCP, UDP or ICMPv6 header is present and long enough. */
  L4: 0x10,
  NEEDS_CSUM: 0x20,
  /** NEEDS_CSUM points at this frame's TCP/UDP/ICMPv6 checksum field: it holds the pseudo-header seed. */
  CSUM_PARTIAL: 0x40,
  DATA_VALID: 0x80,
  GSO: 0x100,
  L4_VERIFIED: 0x200,
  /**
   * A routing header with segments left ≠ 0: the destination address is not the final one (and the
   * checksum's pseudo-header uses the final one), so such a datagram is not for a local service.
   */
  ROUTING_PENDING: 0x400,
  /** A fragment header is present (`fragHdr` is its offset), atomic or not. */
  FRAG_HDR: 0x800,
} as const;

/**
 * Result of `parseFrame6`, allocated once and reused. Offsets are absolute in the parsed buffer;
 * addresses are four host-order words each (saddr[0] holds the first 32 bits on the wire).
 */
export class ParsedFrame6 {
  frame = 0;
  end = 0;
  eth = 0;
  ethertype = 0;
  vlan = 0;
  /** Start of the fixed IPv6 header. */
  l3 = 0;
  payloadLen = 0;
  /** One past the datagram (l3 + 40 + payloadLen): bytes beyond it are Ethernet padding. */
  ipEnd = 0;
  tclass = 0;
  flowLabel = 0;
  hopLimit = 0;
  /** The fixed header's next-header field. */
  nexthdr = 0;
  /** The upper-layer protocol where the walk stopped (for a non-first fragment: the fragment header's next header). */
  proto = 0;
  readonly saddr = new Uint32Array(4);
  readonly daddr = new Uint32Array(4);
  /** Extension headers walked, and their bytes (l4 = l3 + 40 + extLen). */
  extCount = 0;
  extLen = 0;
  /** Offset of the fragment header (PF6.FRAG_HDR), else 0. */
  fragHdr = 0;
  /** Fragment offset in bytes. */
  fragOff = 0;
  fragId = 0;
  /** Start of the upper-layer header. */
  l4 = 0;
  /** TCP header length; 8 for UDP; 0 otherwise. */
  l4HdrLen = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  icmpType = 0;
  icmpCode = 0;
  /** ICMPv6 echo identifier (echo request/reply only). */
  icmpId = 0;
  vnetFlags = 0;
  gsoType = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;
  flags = 0;
}

function reset(p: ParsedFrame6, off: number, end: number): void {
  p.frame = off;
  p.end = end;
  p.eth = off + VNET_HDR_LEN;
  p.ethertype = 0;
  p.vlan = 0;
  p.l3 = 0;
  p.payloadLen = 0;
  p.ipEnd = 0;
  p.tclass = 0;
  p.flowLabel = 0;
  p.hopLimit = 0;
  p.nexthdr = 0;
  p.proto = 0;
  const sa = p.saddr;
  const da = p.daddr;
  sa[0] = sa[1] = sa[2] = sa[3] = 0;
  da[0] = da[1] = da[2] = da[3] = 0;
  p.extCount = 0;
  p.extLen = 0;
  p.fragHdr = 0;
  p.fragOff = 0;
  p.fragId = 0;
  p.l4 = 0;
  p.l4HdrLen = 0;
  p.sport = 0;
  p.dport = 0;
  p.tcpFlags = 0;
  p.icmpType = 0;
  p.icmpCode = 0;
  p.icmpId = 0;
  p.vnetFlags = 0;
  p.gsoType = 0;
  p.gsoSize = 0;
  p.csumStart = 0;
  p.csumOffset = 0;
  p.flags = 0;
}

/**
 * Parses the frame at `off` (its virtio_net_hdr) of `len` bytes into `out`; returns a Verdict. Never
 * throws or allocates; reads nothing beyond min(off + len, buf.length). Frames that are not IPv6 give
 * ARP / OTHER_ETHERTYPE (IPv4 included: parseFrame handles it). `opts`: PARSE.VERIFY_L4.
 *
 * The extension-header walk follows the kernel's ipv6_skip_exthdr (net/ipv6/exthdrs_core.c):
 * hop-by-hop, routing and destination options are (len + 1) × 8 bytes, AH (len + 2) × 4; ESP ends the
 * walk as the upper layer (proto 50, no L4 header); next header 59 gives NO_NEXT_HEADER; a fragment
 * header with a non-zero offset gives FRAGMENT with `proto` its next header and `l4` its payload, while
 * a first fragment goes on to its L4 header (PF6.FRAGMENT set). Beyond the kernel's walk: hop-by-hop
 * must come first (ip6_input's rule), and the chain is capped at EXTHDR_MAX.
 *
 * Payload length 0 on a GSO frame means "the rest of the frame" (the kernel's BIG TCP super-segments
 * carry 0); followed by hop-by-hop it would be a jumbogram, which tsvs does not take (BAD_LENGTH);
 * otherwise it is an empty datagram.
 */
export function parseFrame6(buf: Uint8Array, off: number, len: number, out: ParsedFrame6, opts: number): Verdict {
  // The vnet and Ethernet steps repeat parseFrame's on purpose: sharing them would put a call into
  // the IPv4 path, whose cost is measured; a port hands each frame to exactly one of the two.
  let end = off + len;
  if (end > buf.length) end = buf.length;
  reset(out, off, end);
  const eth = off + VNET_HDR_LEN;
  if (len < 0 || eth + 14 > end) return Verdict.TRUNCATED;

  const vflags = buf[off]!;
  out.vnetFlags = vflags;
  const gsoType = buf[off + VNET.GSO_TYPE]! & 0x7f;
  out.gsoType = gsoType;
  out.gsoSize = buf[off + VNET.GSO_SIZE]! | (buf[off + VNET.GSO_SIZE + 1]! << 8);
  out.csumStart = buf[off + VNET.CSUM_START]! | (buf[off + VNET.CSUM_START + 1]! << 8);
  out.csumOffset = buf[off + VNET.CSUM_OFFSET]! | (buf[off + VNET.CSUM_OFFSET + 1]! << 8);
  let flags = 0;
  if ((vflags & VNET.F_NEEDS_CSUM) !== 0) flags |= PF6.NEEDS_CSUM;
  if ((vflags & VNET.F_DATA_VALID) !== 0) flags |= PF6.DATA_VALID;
  if (gsoType !== VNET.GSO_NONE) flags |= PF6.GSO;

  let l3 = eth + 14;
  let et = (buf[eth + 12]! << 8) | buf[eth + 13]!;
  if (et === 0x8100) {
    if (eth + 18 > end) {
      out.flags = flags;
      return Verdict.TRUNCATED;
    }
    flags |= PF6.VLAN;
    out.vlan = (buf[eth + 14]! << 8) | buf[eth + 15]!;
    et = (buf[eth + 16]! << 8) | buf[eth + 17]!;
    l3 = eth + 18;
  }
  out.ethertype = et;
  out.l3 = l3;
  out.flags = flags;
  if (et !== 0x86dd) {
    if (et === 0x0806) return l3 + 28 > end ? Verdict.TRUNCATED : Verdict.ARP;
    return Verdict.OTHER_ETHERTYPE;
  }

  if (l3 + 40 > end) return Verdict.TRUNCATED;
  const b0 = buf[l3]!;
  if (b0 >>> 4 !== 6) return Verdict.BAD_VERSION;
  const plen = (buf[l3 + 4]! << 8) | buf[l3 + 5]!;
  let ipEnd = l3 + 40 + plen;
  if (plen === 0 && (flags & PF6.GSO) !== 0) {
    ipEnd = end;
  } else if (plen === 0 && buf[l3 + 6] === NEXTHDR.HOP) {
    // A jumbogram (RFC 2675): its length is in a hop-by-hop option tsvs does not take.
    return Verdict.BAD_LENGTH;
  } else if (ipEnd > end) {
    return Verdict.BAD_LENGTH;
  }
  out.payloadLen = ipEnd - l3 - 40;
  out.ipEnd = ipEnd;
  out.tclass = ((b0 & 0x0f) << 4) | (buf[l3 + 1]! >>> 4);
  out.flowLabel = ((buf[l3 + 1]! & 0x0f) << 16) | (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
  let nh = buf[l3 + 6]!;
  out.nexthdr = nh;
  out.hopLimit = buf[l3 + 7]!;
  readAddr6(buf, l3 + 8, out.saddr, 0);
  readAddr6(buf, l3 + 24, out.daddr, 0);

  // The extension-header chain.
  let at = l3 + 40;
  let count = 0;
  while (ipv6ExtHdr(nh)) {
    if (nh === NEXTHDR.NONE) {
      out.proto = nh;
      out.l4 = at;
      out.extCount = count;
      out.extLen = at - l3 - 40;
      out.flags = flags;
      return Verdict.NO_NEXT_HEADER;
    }
    if ((nh === NEXTHDR.HOP && count !== 0) || ++count > EXTHDR_MAX || at + 8 > ipEnd) {
      out.flags = flags;
      return Verdict.BAD_EXTHDR;
    }
    flags |= PF6.EXTHDR;
    const next = buf[at]!;
    let hlen: number;
    if (nh === NEXTHDR.FRAGMENT) {
      hlen = 8;
      const fo = (buf[at + 2]! << 8) | buf[at + 3]!;
      flags |= PF6.FRAG_HDR;
      out.fragHdr = at;
      out.fragOff = fo & 0xfff8;
      out.fragId = readU32(buf, at + 4);
      if ((fo & 0xfff9) !== 0) flags |= PF6.FRAGMENT;
      if ((fo & 0xfff8) !== 0) {
        out.proto = next;
        out.l4 = at + 8;
        out.extCount = count;
        out.extLen = at + 8 - l3 - 40;
        out.flags = flags;
        return Verdict.FRAGMENT;
      }
    } else if (nh === NEXTHDR.AUTH) {
      hlen = (buf[at + 1]! + 2) << 2;
    } else {
      hlen = (buf[at + 1]! + 1) << 3;
      if (nh === NEXTHDR.ROUTING && buf[at + 3] !== 0) flags |= PF6.ROUTING_PENDING;
    }
    if (at + hlen > ipEnd) {
      out.flags = flags;
      return Verdict.BAD_EXTHDR;
    }
    at += hlen;
    nh = next;
  }
  const proto = nh;
  const l4 = at;
  out.proto = proto;
  out.l4 = l4;
  out.extCount = count;
  out.extLen = l4 - l3 - 40;
  out.flags = flags;

  if ((flags & PF6.GSO) !== 0) {
    const ok =
      out.gsoSize !== 0 &&
      ((gsoType === VNET.GSO_TCPV6 && proto === 6) ||
        ((gsoType === VNET.GSO_UDP_L4 || gsoType === VNET.GSO_UDP) && proto === 17));
    if (!ok) return Verdict.BAD_GSO;
  }

  const l4len = ipEnd - l4;
  if (proto === 6) {
    if (l4len < 20) return Verdict.TRUNCATED;
    const doff = (buf[l4 + 12]! >>> 4) << 2;
    if (doff < 20 || doff > l4len) return Verdict.BAD_L4_HEADER;
    out.l4HdrLen = doff;
    out.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    out.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    out.tcpFlags = buf[l4 + 13]!;
  } else if (proto === 17) {
    if (l4len < 8) return Verdict.TRUNCATED;
    if ((flags & (PF6.FRAGMENT | PF6.GSO)) === 0) {
      const ulen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
      if (ulen < 8 || ulen > l4len) return Verdict.BAD_LENGTH;
    }
    out.l4HdrLen = 8;
    out.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    out.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  } else if (proto === 58) {
    if (l4len < 4) return Verdict.TRUNCATED;
    const t = buf[l4]!;
    out.icmpType = t;
    out.icmpCode = buf[l4 + 1]!;
    if (t === 128 || t === 129) {
      if (l4len < 8) return Verdict.TRUNCATED;
      out.icmpId = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
    }
  } else {
    return Verdict.OK;
  }
  flags |= PF6.L4;

  if ((flags & PF6.NEEDS_CSUM) !== 0) {
    if (out.csumStart !== l4 - eth || out.csumOffset !== l4CsumOffset6(proto)) {
      out.flags = flags;
      return Verdict.BAD_VNET_CSUM;
    }
    flags |= PF6.CSUM_PARTIAL;
  }
  out.flags = flags;

  if (
    (opts & PARSE.VERIFY_L4) !== 0 &&
    (flags & (PF6.NEEDS_CSUM | PF6.DATA_VALID | PF6.GSO | PF6.FRAGMENT | PF6.ROUTING_PENDING)) === 0
  ) {
    if (!l4ChecksumOk6(buf, l3, l4, ipEnd, proto)) return Verdict.BAD_L4_CHECKSUM;
    out.flags = flags | PF6.L4_VERIFIED;
  }
  return Verdict.OK;
}

