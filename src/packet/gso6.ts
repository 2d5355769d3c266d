// Software segmentation of IPv6 GSO frames (TCPV6, UDP_L4), for paths that cannot hand GSO state to the kernel.

import { l4SetChecksum6 } from './checksum6.ts';
import { copy, gsoFixL4 } from './gso.ts';
import { VNET, VNET_HDR_LEN } from './vnet.ts';

/**
 * Cuts the IPv6 GSO frame at `off` (vnet header first, `len` bytes) into wire-sized frames, each written
 * with a zeroed vnet header at `dstOffs[k]` of `dst` (slots of `slotSize` bytes) with its own payload
 * length and a complete L4 checksum; extension headers are copied into every segment. `l3`/`l4`/
 * `l4HdrLen` as parseFrame6 reports them. TCP: sequence numbers advance by gso_size, FIN/PSH only on
 * the last segment, CWR only on the first. UDP_L4: each datagram gets its own UDP length. A payload
 * length of 0 (BIG TCP) means "to the end of the frame". Returns the number of frames (lengths in
 * `dstLens`), or -1 for another gso_type, a fragment header in the chain, or too few or small slots.
 */
export function gsoSegment6(
  buf: Uint8Array,
  off: number,
  len: number,
  l3: number,
  l4: number,
  l4HdrLen: number,
  dst: Uint8Array,
  dstOffs: Uint32Array,
  dstLens: Uint32Array,
  slotSize: number,
): number {
  const type = buf[off + VNET.GSO_TYPE]! & ~VNET.GSO_ECN;
  const mss = buf[off + VNET.GSO_SIZE]! | (buf[off + VNET.GSO_SIZE + 1]! << 8);
  const isTcp = type === VNET.GSO_TCPV6;
  if ((!isTcp && type !== VNET.GSO_UDP_L4) || mss === 0) return -1;
  // Segments of a fragmented datagram would each need a fragment header of their own.
  for (let at = l3 + 40, nh = buf[l3 + 6]!; at < l4; ) {
    if (nh === 44) return -1;
    nh = buf[at]!;
    at += nh === 51 ? (buf[at + 1]! + 2) << 2 : (buf[at + 1]! + 1) << 3;
  }
  const plen = (buf[l3 + 4]! << 8) | buf[l3 + 5]!;
  let end = plen === 0 ? off + len : l3 + 40 + plen;
  if (end > off + len) end = off + len;
  const hdrEnd = l4 + l4HdrLen;
  const payload = end - hdrEnd;
  if (payload <= 0) return -1;
  const n = Math.ceil(payload / mss);
  if (n > dstOffs.length) return -1;
  const hdrBytes = hdrEnd - off;
  if (hdrBytes + mss > slotSize) return -1;
  const proto = isTcp ? 6 : 17;
  const seq0 = isTcp ? ((buf[l4 + 4]! << 24) | (buf[l4 + 5]! << 16) | (buf[l4 + 6]! << 8) | buf[l4 + 7]!) >>> 0 : 0;
  const flags0 = isTcp ? buf[l4 + 13]! : 0;
  for (let k = 0; k < n; k++) {
    const o = dstOffs[k]!;
    const chunk = k === n - 1 ? payload - k * mss : mss;
    copy(buf, off, hdrEnd, dst, o);
    copy(buf, hdrEnd + k * mss, hdrEnd + k * mss + chunk, dst, o + hdrBytes);
    dst.fill(0, o, o + VNET_HDR_LEN);
    const sl3 = o + (l3 - off);
    const sl4 = o + (l4 - off);
    const segPlen = l4 - l3 - 40 + l4HdrLen + chunk;
    dst[sl3 + 4] = segPlen >>> 8;
    dst[sl3 + 5] = segPlen & 0xff;
    gsoFixL4(dst, sl4, isTcp, (seq0 + k * mss) >>> 0, flags0, k, n, chunk);
    l4SetChecksum6(dst, sl3, sl4, sl4 + l4HdrLen + chunk, proto);
    dstLens[k] = hdrBytes + chunk;
  }
  return n;
}
