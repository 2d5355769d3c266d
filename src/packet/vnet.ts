// The virtio_net_hdr in front of every frame: accessors for its little-endian fields and offload flags.

import { VNET, VNET_HDR_LEN } from '../io/port.ts';

export { VNET, VNET_HDR_LEN };

/** virtio_net_hdr flags byte of the frame starting at `off`. */
export function vnetFlags(buf: Uint8Array, off: number): number {
  return buf[off]!;
}

/** True when the frame's L4 checksum is partial (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
export function vnetNeedsCsum(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & VNET.F_NEEDS_CSUM) !== 0;
}

/** gso_type without the ECN bit. */
export function vnetGsoType(buf: Uint8Array, off: number): number {
  return buf[off + VNET.GSO_TYPE]! & ~VNET.GSO_ECN & 0xff;
}

/** Reads a little-endian u16 field of the header (HDR_LEN, GSO_SIZE, CSUM_START, CSUM_OFFSET). */
export function vnetGet16(buf: Uint8Array, off: number, field: number): number {
  return buf[off + field]! | (buf[off + field + 1]! << 8);
}

/** Writes a little-endian u16 field of the header. */
export function vnetSet16(buf: Uint8Array, off: number, field: number, v: number): void {
  buf[off + field] = v & 0xff;
  buf[off + field + 1] = (v >>> 8) & 0xff;
}

/** Writes an all-zero header (no offloads, complete checksums): what locally built frames carry. */
export function vnetClear(buf: Uint8Array, off: number): void {
  for (let i = 0; i < VNET_HDR_LEN; i++) buf[off + i] = 0;
}

/**
 * Moves csum_start and hdr_len (both measured from the Ethernet start) by `delta` bytes, for a header
 * inserted (+) or removed (-) between the Ethernet header and the checksummed data (IPIP). Fields that
 * are zero (unused) stay zero.
 */
export function vnetShift(buf: Uint8Array, off: number, delta: number): void {
  if ((buf[off]! & VNET.F_NEEDS_CSUM) !== 0) {
    vnetSet16(buf, off, VNET.CSUM_START, vnetGet16(buf, off, VNET.CSUM_START) + delta);
  }
  const h = vnetGet16(buf, off, VNET.HDR_LEN);
  if (h !== 0) vnetSet16(buf, off, VNET.HDR_LEN, h + delta);
}
