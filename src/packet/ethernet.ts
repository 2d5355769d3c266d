// Ethernet II with at most one 802.1Q tag: ethertypes, MAC addresses, header length.

/** Ethertypes the data plane tells apart. */
export const ETH_P = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
} as const;

/** Length of an untagged Ethernet header. */
export const ETH_HLEN = 14;
/** Length of an Ethernet header with one 802.1Q tag. */
export const ETH_VLAN_HLEN = 18;

/** Header length of the Ethernet frame at `eth`: 18 when it carries an 802.1Q tag, else 14. */
export function ethHeaderLen(buf: Uint8Array, eth: number): number {
  return buf[eth + 12] === 0x81 && buf[eth + 13] === 0x00 ? ETH_VLAN_HLEN : ETH_HLEN;
}

/** The ethertype after at most one 802.1Q tag. */
export function ethType(buf: Uint8Array, eth: number): number {
  const t = (buf[eth + 12]! << 8) | buf[eth + 13]!;
  return t === ETH_P.VLAN ? (buf[eth + 16]! << 8) | buf[eth + 17]! : t;
}

/** Copies 6 bytes of MAC from src[srcOff] to dst[dstOff]. */
export function copyMac(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number): void {
  dst[dstOff] = src[srcOff]!;
  dst[dstOff + 1] = src[srcOff + 1]!;
  dst[dstOff + 2] = src[srcOff + 2]!;
  dst[dstOff + 3] = src[srcOff + 3]!;
  dst[dstOff + 4] = src[srcOff + 4]!;
  dst[dstOff + 5] = src[srcOff + 5]!;
}

/** Sets destination and source MACs of the frame at `eth` (each taken from 6 bytes at the given offsets). */
export function setEthAddrs(
  buf: Uint8Array,
  eth: number,
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
): void {
  copyMac(buf, eth, dst, dstOff);
  copyMac(buf, eth + 6, src, srcOff);
}

/** Swaps destination and source MACs in place (for replies). */
export function swapEthAddrs(buf: Uint8Array, eth: number): void {
  for (let i = 0; i < 6; i++) {
    const t = buf[eth + i]!;
    buf[eth + i] = buf[eth + 6 + i]!;
    buf[eth + 6 + i] = t;
  }
}

/** True when the 6 bytes at a[ao] equal those at b[bo]. */
export function macEquals(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  return (
    a[ao] === b[bo] &&
    a[ao + 1] === b[bo + 1] &&
    a[ao + 2] === b[bo + 2] &&
    a[ao + 3] === b[bo + 3] &&
    a[ao + 4] === b[bo + 4] &&
    a[ao + 5] === b[bo + 5]
  );
}

/** True for the broadcast MAC ff:ff:ff:ff:ff:ff at buf[at]. */
export function macIsBroadcast(buf: Uint8Array, at: number): boolean {
  return (buf[at]! & buf[at + 1]! & buf[at + 2]! & buf[at + 3]! & buf[at + 4]! & buf[at + 5]!) === 0xff;
}

/** True for a group (multicast or broadcast) MAC: the I/G bit of the first byte. */
export function macIsMulticast(buf: Uint8Array, at: number): boolean {
  return (buf[at]! & 1) !== 0;
}

/** Writes an untagged Ethernet header at `eth`; returns the L3 offset. */
export function writeEthHeader(
  buf: Uint8Array,
  eth: number,
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  ethertype: number,
): number {
  copyMac(buf, eth, dst, dstOff);
  copyMac(buf, eth + 6, src, srcOff);
  buf[eth + 12] = ethertype >>> 8;
  buf[eth + 13] = ethertype & 0xff;
  return eth + ETH_HLEN;
}

/** Formats a MAC for logs and tests (slow path: allocates a string). */
export function macToString(buf: Uint8Array, at: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + buf[at + i]!.toString(16).padStart(2, '0');
  return s;
}
