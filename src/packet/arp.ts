// ARP for IPv4 over Ethernet: parse, answer a request in place, build requests, replies and gratuitous ARP.

import { VNET_HDR_LEN } from '../io/port.ts';
import { readU32, writeU32 } from './checksum.ts';
import { copyMac, writeEthHeader } from './ethernet.ts';
import { vnetClear } from './vnet.ts';

/** ARP opcodes and layout (RFC 826, Ethernet/IPv4 only). */
export const ARP = {
  REQUEST: 1,
  REPLY: 2,
  /** Bytes of an Ethernet/IPv4 ARP payload. */
  LEN: 28,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
} as const;

/** An Ethernet/IPv4 ARP packet read by `parseArp` (allocate once, reuse). MACs stay in the buffer. */
export class ArpPacket {
  op = 0;
  /** Offset of the sender hardware address in the buffer. */
  sha = 0;
  spa = 0;
  /** Offset of the target hardware address in the buffer. */
  tha = 0;
  tpa = 0;
}

/**
 * Reads the ARP payload at `arp` (ParsedFrame.l3 for an ARP verdict) ending at `end`. Returns false
 * unless it is Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4) and long enough.
 */
export function parseArp(buf: Uint8Array, arp: number, end: number, out: ArpPacket): boolean {
  if (end > buf.length) end = buf.length;
  if (arp < 0 || arp + ARP.LEN > end) return false;
  if (buf[arp] !== 0 || buf[arp + 1] !== 1 || buf[arp + 2] !== 0x08 || buf[arp + 3] !== 0x00) return false;
  if (buf[arp + 4] !== 6 || buf[arp + 5] !== 4) return false;
  out.op = (buf[arp + 6]! << 8) | buf[arp + 7]!;
  out.sha = arp + ARP.SHA;
  out.spa = readU32(buf, arp + ARP.SPA);
  out.tha = arp + ARP.THA;
  out.tpa = readU32(buf, arp + ARP.TPA);
  return true;
}

/**
 * Turns the ARP request at `arp` (inside the frame whose Ethernet header is at `eth`, any VLAN tag
 * kept) into the reply "tpa is at `mac`": target := old sender, sender := (mac, old tpa), op 2, and
 * the Ethernet header addressed back to the requester. The caller checked the request with parseArp.
 */
export function arpReplyInPlace(buf: Uint8Array, eth: number, arp: number, mac: Uint8Array, macOff: number): void {
  const tpa = readU32(buf, arp + ARP.TPA);
  copyMac(buf, arp + ARP.THA, buf, arp + ARP.SHA);
  writeU32(buf, arp + ARP.TPA, readU32(buf, arp + ARP.SPA));
  copyMac(buf, arp + ARP.SHA, mac, macOff);
  writeU32(buf, arp + ARP.SPA, tpa);
  buf[arp + 6] = 0;
  buf[arp + 7] = ARP.REPLY;
  copyMac(buf, eth, buf, arp + ARP.THA);
  copyMac(buf, eth + 6, mac, macOff);
}

const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ZERO_MAC = new Uint8Array(6);

/**
 * Builds a complete ARP frame into `dst` at `off` (zeroed vnet header + untagged Ethernet + 28 bytes,
 * unpadded). The Ethernet destination is `tha` for replies, broadcast for requests. Returns its
 * length (52), or -1 when `dst` is too small.
 */
export function buildArp(
  dst: Uint8Array,
  off: number,
  op: number,
  sha: Uint8Array,
  shaOff: number,
  spa: number,
  tha: Uint8Array,
  thaOff: number,
  tpa: number,
): number {
  const len = VNET_HDR_LEN + 14 + ARP.LEN;
  if (off < 0 || off + len > dst.length) return -1;
  vnetClear(dst, off);
  const eth = off + VNET_HDR_LEN;
  const arp =
    op === ARP.REQUEST
      ? writeEthHeader(dst, eth, BROADCAST, 0, sha, shaOff, 0x0806)
      : writeEthHeader(dst, eth, tha, thaOff, sha, shaOff, 0x0806);
  dst[arp] = 0;
  dst[arp + 1] = 1;
  dst[arp + 2] = 0x08;
  dst[arp + 3] = 0;
  dst[arp + 4] = 6;
  dst[arp + 5] = 4;
  dst[arp + 6] = 0;
  dst[arp + 7] = op & 0xff;
  copyMac(dst, arp + ARP.SHA, sha, shaOff);
  writeU32(dst, arp + ARP.SPA, spa);
  copyMac(dst, arp + ARP.THA, tha, thaOff);
  writeU32(dst, arp + ARP.TPA, tpa);
  return len;
}

/** Builds an ARP request "who has `tpa`, tell `spa`" (target MAC zero, Ethernet broadcast). */
export function buildArpRequest(dst: Uint8Array, off: number, sha: Uint8Array, shaOff: number, spa: number, tpa: number): number {
  return buildArp(dst, off, ARP.REQUEST, sha, shaOff, spa, ZERO_MAC, 0, tpa);
}

/**
 * Builds a gratuitous ARP announcing `ip` at `mac`: a broadcast request with sender and target
 * address both `ip` (RFC 5227's announcement form), which updates neighbours' caches.
 */
export function buildGratuitousArp(dst: Uint8Array, off: number, mac: Uint8Array, macOff: number, ip: number): number {
  return buildArp(dst, off, ARP.REQUEST, mac, macOff, ip, ZERO_MAC, 0, ip);
}
