// The data plane's one-pass frame parser: vnet header, Ethernet/802.1Q, IPv4, TCP/UDP/ICMP into a reused object.

import { VNET, VNET_HDR_LEN } from '../io/port.ts';
import { csumFold, l4ChecksumOk, readU32, sum16 } from './checksum.ts';

/** What `parseFrame` concluded. Only OK frames have every field filled; see each value. */
export const enum Verdict {
  /** IPv4 with a complete header; TCP/UDP/ICMP headers present when `flags & PF.L4`. */
  OK = 0,
  /** ARP: `l3` points at the ARP payload (see arp.ts `parseArp`). */
  ARP = 1,
  /** IPv6 ethertype: `l3` set, nothing else parsed (callers count these). */
  IPV6 = 2,
  /** Any other ethertype (including a second VLAN tag); `ethertype` set. */
  OTHER_ETHERTYPE = 3,
  /** Frame ends inside the vnet, Ethernet, IPv4 or L4 header. */
  TRUNCATED = 4,
  /** IPv4 version field is not 4. */
  BAD_VERSION = 5,
  /** IHL below 5. */
  BAD_IHL = 6,
  /** IP total length below the header length or beyond the captured frame; UDP length inconsistent. */
  BAD_LENGTH = 7,
  BAD_IP_CHECKSUM = 8,
  /** TCP data offset below 5 or beyond the segment. */
  BAD_L4_HEADER = 9,
  /** Only with PARSE.VERIFY_L4, and only for complete checksums of unfragmented, non-GSO frames. */
  BAD_L4_CHECKSUM = 10,
  /** Non-first fragment: IP fields filled, no L4 header (`l4` is where its payload starts). */
  FRAGMENT = 11,
  /** NEEDS_CSUM set but csum_start/csum_offset do not point at this TCP/UDP checksum field. */
  BAD_VNET_CSUM = 12,
  /**
   * IPv6 (parseFrame6): an extension header runs past the datagram, hop-by-hop is not first, or the
   * chain is longer than EXTHDR_MAX.
   */
  BAD_EXTHDR = 13,
  /** IPv6 (parseFrame6): gso_type does not match the datagram (TCPV6 on TCP, UDP_L4 on UDP) or gso_size is 0. */
  BAD_GSO = 14,
  /** IPv6 (parseFrame6): the chain ends in next header 59 (no upper layer; `l4` is where it would start). */
  NO_NEXT_HEADER = 15,
}

const VERDICT_NAMES = [
  'OK',
  'ARP',
  'IPV6',
  'OTHER_ETHERTYPE',
  'TRUNCATED',
  'BAD_VERSION',
  'BAD_IHL',
  'BAD_LENGTH',
  'BAD_IP_CHECKSUM',
  'BAD_L4_HEADER',
  'BAD_L4_CHECKSUM',
  'FRAGMENT',
  'BAD_VNET_CSUM',
  'BAD_EXTHDR',
  'BAD_GSO',
  'NO_NEXT_HEADER',
];
/** Number of verdict values (for sizing counter arrays indexed by verdict). */
export const VERDICT_COUNT = VERDICT_NAMES.length;

/** Name of a verdict, for counters and logs (slow path). */
export function verdictName(v: number): string {
  return VERDICT_NAMES[v] ?? `UNKNOWN(${v})`;
}

/** Bits of `ParsedFrame.flags`. */
export const PF = {
  /** The frame carries an 802.1Q tag (`vlan` holds the TCI). */
  VLAN: 0x1,
  /** IPv4 header longer than 20 bytes. */
  IP_OPTIONS: 0x2,
  /** MF set or fragment offset non-zero. */
  FRAGMENT: 0x4,
  /** Don't Fragment set. */
  DF: 0x8,
  /** A TCP, UDP or ICMP header is present and long enough (first fragment or unfragmented). */
  L4: 0x10,
  /** vnet NEEDS_CSUM is set. */
  NEEDS_CSUM: 0x20,
  /** NEEDS_CSUM points at this frame's TCP/UDP checksum field: it holds a partial (seed) checksum. */
  CSUM_PARTIAL: 0x40,
  /** vnet DATA_VALID is set (the kernel already verified the L4 checksum). */
  DATA_VALID: 0x80,
  /** gso_type is not NONE: a large segment the kernel will cut up. */
  GSO: 0x100,
  /** The L4 checksum was verified here (PARSE.VERIFY_L4) and is correct. */
  L4_VERIFIED: 0x200,
} as const;

/** Options of `parseFrame`. */
export const PARSE = {
  /** Verify complete TCP/UDP/ICMP checksums (off on the fast path). */
  VERIFY_L4: 0x1,
  /** Skip the IPv4 header checksum check (on by default: 20 bytes cost little). */
  NO_IP_CSUM: 0x2,
} as const;

/**
 * Result of `parseFrame`, allocated once by the caller and reused for every frame. All offsets are
 * absolute positions in the buffer passed to `parseFrame`; addresses are uint32 (host order).
 */
export class ParsedFrame {
  /** Start of the vnet header (the `off` given to parseFrame). */
  frame = 0;
  /** One past the last captured byte (off + len). */
  end = 0;
  /** Start of the Ethernet header (frame + 10). */
  eth = 0;
  /** Ethertype after at most one VLAN tag. */
  ethertype = 0;
  /** 802.1Q TCI (PCP, DEI, VID) when PF.VLAN, else 0. */
  vlan = 0;
  /** Start of the L3 header (eth + 14 or 18). */
  l3 = 0;
  /** IPv4 header length in bytes (IHL × 4). */
  ipHdrLen = 0;
  /** IPv4 total length. */
  totLen = 0;
  /** One past the IPv4 datagram (l3 + totLen): bytes beyond it are Ethernet padding. */
  ipEnd = 0;
  tos = 0;
  id = 0;
  /** Fragment offset in bytes. */
  fragOff = 0;
  ttl = 0;
  proto = 0;
  saddr = 0;
  daddr = 0;
  /** Start of the L4 header (l3 + ipHdrLen). */
  l4 = 0;
  /** TCP header length in bytes; 8 for UDP, 0 otherwise. */
  l4HdrLen = 0;
  sport = 0;
  dport = 0;
  /** TCP flag byte. */
  tcpFlags = 0;
  icmpType = 0;
  icmpCode = 0;
  /** ICMP echo identifier (echo request/reply only). */
  icmpId = 0;
  /** Raw vnet header fields. */
  vnetFlags = 0;
  /** gso_type without the ECN bit. */
  gsoType = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;
  /** PF bits. */
  flags = 0;
}

/** IPv4 header check with the common 20-byte case unrolled (it runs for every frame). */
function ipHeaderOk(buf: Uint8Array, l3: number, hlen: number): boolean {
  if (hlen !== 20) return csumFold(sum16(buf, l3, l3 + hlen, 0)) === 0xffff;
  const s =
    ((buf[l3]! << 8) | buf[l3 + 1]!) +
    ((buf[l3 + 2]! << 8) | buf[l3 + 3]!) +
    ((buf[l3 + 4]! << 8) | buf[l3 + 5]!) +
    ((buf[l3 + 6]! << 8) | buf[l3 + 7]!) +
    ((buf[l3 + 8]! << 8) | buf[l3 + 9]!) +
    ((buf[l3 + 10]! << 8) | buf[l3 + 11]!) +
    ((buf[l3 + 12]! << 8) | buf[l3 + 13]!) +
    ((buf[l3 + 14]! << 8) | buf[l3 + 15]!) +
    ((buf[l3 + 16]! << 8) | buf[l3 + 17]!) +
    ((buf[l3 + 18]! << 8) | buf[l3 + 19]!);
  return csumFold(s) === 0xffff;
}

function reset(p: ParsedFrame, off: number, end: number): void {
  p.frame = off;
  p.end = end;
  p.eth = off + VNET_HDR_LEN;
  p.ethertype = 0;
  p.vlan = 0;
  p.l3 = 0;
  p.ipHdrLen = 0;
  p.totLen = 0;
  p.ipEnd = 0;
  p.tos = 0;
  p.id = 0;
  p.fragOff = 0;
  p.ttl = 0;
  p.proto = 0;
  p.saddr = 0;
  p.daddr = 0;
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
 * Parses the frame at `off` (the start of its virtio_net_hdr) of `len` bytes (header included, as a
 * port reports it) into `out`, and returns a Verdict. Never throws, never allocates; reads nothing
 * beyond min(off + len, buf.length).
 *
 * Checks per packet: lengths at every layer, IPv4 version/IHL/total length, the IPv4 header checksum
 * (unless PARSE.NO_IP_CSUM), TCP data offset, UDP length (unfragmented, non-GSO), and that NEEDS_CSUM
 * points at the TCP/UDP checksum field. L4 checksums only with PARSE.VERIFY_L4, and only when the frame
 * has a complete one (no NEEDS_CSUM, no DATA_VALID, no GSO, not fragmented).
 */
export function parseFrame(buf: Uint8Array, off: number, len: number, out: ParsedFrame, opts: number): Verdict {
  let end = off + len;
  if (end > buf.length) end = buf.length;
  reset(out, off, end);
  const eth = off + VNET_HDR_LEN;
  if (len < 0 || eth + 14 > end) return Verdict.TRUNCATED;

  const vflags = buf[off]!;
  out.vnetFlags = vflags;
  out.gsoType = buf[off + VNET.GSO_TYPE]! & 0x7f;
  out.gsoSize = buf[off + VNET.GSO_SIZE]! | (buf[off + VNET.GSO_SIZE + 1]! << 8);
  out.csumStart = buf[off + VNET.CSUM_START]! | (buf[off + VNET.CSUM_START + 1]! << 8);
  out.csumOffset = buf[off + VNET.CSUM_OFFSET]! | (buf[off + VNET.CSUM_OFFSET + 1]! << 8);
  let flags = 0;
  if ((vflags & VNET.F_NEEDS_CSUM) !== 0) flags |= PF.NEEDS_CSUM;
  if ((vflags & VNET.F_DATA_VALID) !== 0) flags |= PF.DATA_VALID;
  if (out.gsoType !== VNET.GSO_NONE) flags |= PF.GSO;

  let l3 = eth + 14;
  let et = (buf[eth + 12]! << 8) | buf[eth + 13]!;
  if (et === 0x8100) {
    if (eth + 18 > end) {
      out.flags = flags;
      return Verdict.TRUNCATED;
    }
    flags |= PF.VLAN;
    out.vlan = (buf[eth + 14]! << 8) | buf[eth + 15]!;
    et = (buf[eth + 16]! << 8) | buf[eth + 17]!;
    l3 = eth + 18;
  }
  out.ethertype = et;
  out.l3 = l3;
  out.flags = flags;
  if (et !== 0x0800) {
    if (et === 0x0806) return l3 + 28 > end ? Verdict.TRUNCATED : Verdict.ARP;
    if (et === 0x86dd) return Verdict.IPV6;
    return Verdict.OTHER_ETHERTYPE;
  }

  // IPv4
  if (l3 + 20 > end) return Verdict.TRUNCATED;
  const vihl = buf[l3]!;
  if (vihl >>> 4 !== 4) return Verdict.BAD_VERSION;
  const hlen = (vihl & 0x0f) << 2;
  if (hlen < 20) return Verdict.BAD_IHL;
  out.ipHdrLen = hlen;
  if (l3 + hlen > end) return Verdict.TRUNCATED;
  const totLen = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
  if (totLen < hlen || l3 + totLen > end) return Verdict.BAD_LENGTH;
  const ipEnd = l3 + totLen;
  out.totLen = totLen;
  out.ipEnd = ipEnd;
  out.tos = buf[l3 + 1]!;
  out.id = (buf[l3 + 4]! << 8) | buf[l3 + 5]!;
  const frag = (buf[l3 + 6]! << 8) | buf[l3 + 7]!;
  out.fragOff = (frag & 0x1fff) << 3;
  out.ttl = buf[l3 + 8]!;
  const proto = buf[l3 + 9]!;
  out.proto = proto;
  out.saddr = readU32(buf, l3 + 12);
  out.daddr = readU32(buf, l3 + 16);
  const l4 = l3 + hlen;
  out.l4 = l4;
  if (hlen > 20) flags |= PF.IP_OPTIONS;
  if ((frag & 0x4000) !== 0) flags |= PF.DF;
  if ((frag & 0x3fff) !== 0) flags |= PF.FRAGMENT;
  out.flags = flags;
  if ((opts & PARSE.NO_IP_CSUM) === 0 && !ipHeaderOk(buf, l3, hlen)) return Verdict.BAD_IP_CHECKSUM;
  if ((frag & 0x1fff) !== 0) return Verdict.FRAGMENT;

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
    if ((flags & (PF.FRAGMENT | PF.GSO)) === 0) {
      const ulen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
      if (ulen < 8 || ulen > l4len) return Verdict.BAD_LENGTH;
    }
    out.l4HdrLen = 8;
    out.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    out.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  } else if (proto === 1) {
    if (l4len < 8) return Verdict.TRUNCATED;
    const t = buf[l4]!;
    out.icmpType = t;
    out.icmpCode = buf[l4 + 1]!;
    if (t === 0 || t === 8) out.icmpId = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
  } else {
    return Verdict.OK;
  }
  flags |= PF.L4;

  if ((flags & PF.NEEDS_CSUM) !== 0 && proto !== 1) {
    if (out.csumStart !== l4 - eth || out.csumOffset !== (proto === 6 ? 16 : 6)) {
      out.flags = flags;
      return Verdict.BAD_VNET_CSUM;
    }
    flags |= PF.CSUM_PARTIAL;
  }
  out.flags = flags;

  if (
    (opts & PARSE.VERIFY_L4) !== 0 &&
    (flags & (PF.NEEDS_CSUM | PF.DATA_VALID | PF.GSO | PF.FRAGMENT)) === 0
  ) {
    const ok =
      proto === 1 ? csumFold(sum16(buf, l4, ipEnd, 0)) === 0xffff : l4ChecksumOk(buf, l3, l4, ipEnd, proto);
    if (!ok) return Verdict.BAD_L4_CHECKSUM;
    out.flags = flags | PF.L4_VERIFIED;
  }
  return Verdict.OK;
}
