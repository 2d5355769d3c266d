// Neighbour Discovery (RFC 4861) for IPv6 over Ethernet: NS/NA parsing with the §7.1 validity checks, solicited-node multicast, and NS/NA builders.

import { readU32 } from './checksum.ts';
import { l4ChecksumOk6, l4SetChecksum6 } from './checksum6.ts';
import { copyMac, writeEthHeader } from './ethernet.ts';
import { ICMP6 } from './icmp6.ts';
import { NEXTHDR, addr6IsMulticast, addr6IsUnspecified, writeAddr6, writeIpv6Header } from './ipv6.ts';
import { PF6, type ParsedFrame6 } from './parse6.ts';
import { VNET_HDR_LEN, vnetClear } from './vnet.ts';

/** NA flag bits (the first byte after the ICMPv6 header) and option types. */
export const ND = {
  NA_ROUTER: 0x80,
  NA_SOLICITED: 0x40,
  NA_OVERRIDE: 0x20,
  OPT_SOURCE_LLADDR: 1,
  OPT_TARGET_LLADDR: 2,
  /** NS and NA carry 255 and a receiver drops anything else: the message cannot come from off-link. */
  HOP_LIMIT: 255,
  /** Bytes of an NS/NA message with one Ethernet link-layer address option. */
  MSG_LEN: 32,
} as const;

/** An NS or NA read by `parseNdisc` (allocate once, reuse). */
export class NdMessage {
  /** ICMP6.NEIGH_SOLICIT or ICMP6.NEIGH_ADVERT. */
  type = 0;
  /** NA flags (ND.NA_*); 0 for NS. */
  flags = 0;
  /** Offset of the target address in the buffer, and its words. */
  targetAt = 0;
  readonly target = new Uint32Array(4);
  /** Offset of the 6-byte link-layer address of the source (NS) or target (NA) option, or -1 when absent. */
  lladdr = -1;
  /** The NS came from :: (duplicate address detection): answer to all-nodes, never learn its source. */
  srcUnspecified = false;
}

/** ff02::1 (all nodes), as words. */
export const ALL_NODES = Uint32Array.of(0xff020000, 0, 0, 1);

/** Writes the solicited-node multicast address of `t[ti..]` (ff02::1:ff00:0/104 + its low 24 bits) to `out[oi..]`. */
export function solicitedNodeMulticast(t: Uint32Array, ti: number, out: Uint32Array, oi: number): void {
  out[oi] = 0xff020000;
  out[oi + 1] = 0;
  out[oi + 2] = 1;
  out[oi + 3] = (0xff000000 | (t[ti + 3]! & 0xffffff)) >>> 0;
}

/** Writes the Ethernet MAC of an IPv6 multicast group (RFC 2464 §7: 33:33 + its low 32 bits) to `out[oi..]`. */
export function ipv6MulticastMac(a: Uint32Array, ai: number, out: Uint8Array, oi: number): void {
  const v = a[ai + 3]!;
  out[oi] = 0x33;
  out[oi + 1] = 0x33;
  out[oi + 2] = v >>> 24;
  out[oi + 3] = (v >>> 16) & 0xff;
  out[oi + 4] = (v >>> 8) & 0xff;
  out[oi + 5] = v & 0xff;
}

function isSolicitedNode(buf: Uint8Array, at: number): boolean {
  return readU32(buf, at) === 0xff020000 && readU32(buf, at + 4) === 0 && readU32(buf, at + 8) === 1 && buf[at + 12] === 0xff;
}

/**
 * Reads the NS or NA in the parsed frame `p` into `out`, applying RFC 4861 §7.1.1/§7.1.2: hop limit
 * 255, code 0, at least 24 bytes, a correct checksum (unless the kernel vouched for it), a unicast
 * target, every option of non-zero length inside the message; an NS from :: must go to a
 * solicited-node address and carry no source link-layer option; an NA to a multicast address must
 * not claim to be solicited. Returns false for anything else, changing nothing the caller relies on.
 */
export function parseNdisc(buf: Uint8Array, p: ParsedFrame6, out: NdMessage): boolean {
  if (p.proto !== NEXTHDR.ICMPV6 || (p.flags & PF6.L4) === 0 || (p.flags & PF6.FRAGMENT) !== 0) return false;
  const t = p.icmpType;
  if ((t !== ICMP6.NEIGH_SOLICIT && t !== ICMP6.NEIGH_ADVERT) || p.icmpCode !== 0 || p.hopLimit !== ND.HOP_LIMIT) return false;
  const l4 = p.l4;
  const end = p.ipEnd;
  if (end - l4 < 24) return false;
  if ((p.flags & PF6.DATA_VALID) === 0 && !l4ChecksumOk6(buf, p.l3, l4, end, NEXTHDR.ICMPV6)) return false;
  if (addr6IsMulticast(buf, l4 + 8)) return false;
  let ll = -1;
  const want = t === ICMP6.NEIGH_SOLICIT ? ND.OPT_SOURCE_LLADDR : ND.OPT_TARGET_LLADDR;
  for (let o = l4 + 24; o < end; ) {
    if (o + 2 > end) return false;
    const olen = buf[o + 1]! << 3;
    if (olen === 0 || o + olen > end) return false;
    if (buf[o] === want && olen >= 8 && ll < 0) ll = o + 2;
    o += olen;
  }
  const unspec = addr6IsUnspecified(buf, p.l3 + 8);
  if (t === ICMP6.NEIGH_SOLICIT) {
    if (unspec && (!isSolicitedNode(buf, p.l3 + 24) || ll >= 0)) return false;
    out.flags = 0;
  } else {
    const f = buf[l4 + 4]!;
    if (addr6IsMulticast(buf, p.l3 + 24) && (f & ND.NA_SOLICITED) !== 0) return false;
    out.flags = f & 0xe0;
  }
  out.type = t;
  out.targetAt = l4 + 8;
  for (let w = 0; w < 4; w++) out.target[w] = readU32(buf, l4 + 8 + 4 * w);
  out.lladdr = ll;
  out.srcUnspecified = unspec;
  return true;
}

const DST_TMP = new Uint32Array(4);
const MAC_TMP = new Uint8Array(6);

function buildNd(
  dst: Uint8Array,
  off: number,
  type: number,
  flags: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  mac: Uint8Array,
  macOff: number,
  src: Uint32Array,
  si: number,
  to: Uint32Array,
  toi: number,
  target: Uint32Array,
  ti: number,
  withOption: boolean,
): number {
  const msgLen = withOption ? ND.MSG_LEN : 24;
  const len = VNET_HDR_LEN + 14 + 40 + msgLen;
  if (off < 0 || off + len > dst.length) return -1;
  vnetClear(dst, off);
  const l3 = writeEthHeader(dst, off + VNET_HDR_LEN, ethDst, ethDstOff, mac, macOff, 0x86dd);
  const l4 = writeIpv6Header(dst, l3, 0, 0, msgLen, NEXTHDR.ICMPV6, ND.HOP_LIMIT, src, si, to, toi);
  dst[l4] = type;
  dst[l4 + 1] = 0;
  dst[l4 + 2] = 0;
  dst[l4 + 3] = 0;
  dst[l4 + 4] = flags & 0xff;
  dst[l4 + 5] = 0;
  dst[l4 + 6] = 0;
  dst[l4 + 7] = 0;
  writeAddr6(dst, l4 + 8, target, ti);
  if (withOption) {
    dst[l4 + 24] = type === ICMP6.NEIGH_SOLICIT ? ND.OPT_SOURCE_LLADDR : ND.OPT_TARGET_LLADDR;
    dst[l4 + 25] = 1;
    copyMac(dst, l4 + 26, mac, macOff);
  }
  l4SetChecksum6(dst, l3, l4, l4 + msgLen, NEXTHDR.ICMPV6);
  return len;
}

/**
 * Builds a Neighbour Solicitation for `target` from `src` (the director's address on that link) into
 * `dst` at `off`: to the target's solicited-node group and its 33:33 MAC, hop limit 255, with a source
 * link-layer option carrying `mac` — or, when `src` is :: (duplicate address detection), without it.
 * Returns the frame length (96, or 88 without the option), or -1 when `dst` is too small.
 */
export function buildNeighborSolicit(
  dst: Uint8Array,
  off: number,
  mac: Uint8Array,
  macOff: number,
  src: Uint32Array,
  si: number,
  target: Uint32Array,
  ti: number,
): number {
  solicitedNodeMulticast(target, ti, DST_TMP, 0);
  ipv6MulticastMac(DST_TMP, 0, MAC_TMP, 0);
  const dad = (src[si]! | src[si + 1]! | src[si + 2]! | src[si + 3]!) === 0;
  return buildNd(dst, off, ICMP6.NEIGH_SOLICIT, 0, MAC_TMP, 0, mac, macOff, src, si, DST_TMP, 0, target, ti, !dad);
}

/**
 * Builds a Neighbour Advertisement "`target` is at `mac`" from `src` to `to` (Ethernet `ethDst`),
 * with NA flags `flags` (ND.NA_*) and a target link-layer option. The kernel's ndisc_recv_ns answers an
 * NS with S set, O only when the NS was multicast (a unicast NS is a reachability probe), R when it
 * forwards, to the NS's source; one from :: (DAD) goes to all-nodes (ALL_NODES, 33:33:00:00:00:01)
 * with S clear and O set.
 */
export function buildNeighborAdvert(
  dst: Uint8Array,
  off: number,
  mac: Uint8Array,
  macOff: number,
  src: Uint32Array,
  si: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  to: Uint32Array,
  toi: number,
  target: Uint32Array,
  ti: number,
  flags: number,
): number {
  return buildNd(dst, off, ICMP6.NEIGH_ADVERT, flags, ethDst, ethDstOff, mac, macOff, src, si, to, toi, target, ti, true);
}

const ALL_NODES_MAC = Uint8Array.of(0x33, 0x33, 0, 0, 0, 1);

/**
 * The unsolicited NA a node sends when an address becomes its own (RFC 4861 §7.2.6), IPv6's
 * gratuitous ARP: from and about `addr`, to all-nodes, S clear and O set so neighbours replace a cached
 * link-layer address; R when the sender forwards on that link (the kernel's ndisc_send_unsol_na takes
 * it from the interface's forwarding setting). tsvs sends it without duplicate address detection first
 * (the operator assigned the address; a VIP that moves between directors must take over at once).
 */
export function buildUnsolicitedNeighborAdvert(
  dst: Uint8Array,
  off: number,
  mac: Uint8Array,
  macOff: number,
  addr: Uint32Array,
  ai: number,
  router = false,
): number {
  const flags = ND.NA_OVERRIDE | (router ? ND.NA_ROUTER : 0);
  return buildNeighborAdvert(dst, off, mac, macOff, addr, ai, ALL_NODES_MAC, 0, ALL_NODES, 0, addr, ai, flags);
}
