// Software segmentation of GSO frames (TCPv4, UDP L4), for paths that cannot hand GSO state to the kernel.
import { VNET, VNET_HDR_LEN } from '../io/port.ts';
import { ipv4SetChecksum, l4SetChecksum } from './checksum.ts';

/** Copies [from, to) of `src` to `dst` at `at` without creating a view when both are one buffer. */
export function copy(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): void {
  if (src === dst) dst.copyWithin(at, from, to);
  else dst.set(src.subarray(from, to), at);
}

/**
 * The L4 fields segment `k` of `n` carries (both families): TCP's sequence number `seq`, FIN/PSH only on
 * the last segment and CWR only on the first; or UDP's length for a `chunk`-byte datagram.
 */
export function gsoFixL4(dst: Uint8Array, sl4: number, isTcp: boolean, seq: number, flags0: number, k: number, n: number, chunk: number): void {
  if (isTcp) {
    dst[sl4 + 4] = seq >>> 24;
    dst[sl4 + 5] = (seq >>> 16) & 0xff;
    dst[sl4 + 6] = (seq >>> 8) & 0xff;
    dst[sl4 + 7] = seq & 0xff;
    let f = flags0;
    if (k !== n - 1) f &= ~0x09; // FIN, PSH only on the last segment
    if (k !== 0) f &= ~0x80; // CWR only on the first
    dst[sl4 + 13] = f;
  } else {
    const ulen = 8 + chunk;
    dst[sl4 + 4] = ulen >>> 8;
    dst[sl4 + 5] = ulen & 0xff;
  }
}

/**
 * Cuts the GSO frame at `off` (vnet header first) into wire-sized frames, each written with a zeroed
 * vnet header at `dstOffs[k]` of `dst` (slots of at least `slotSize` bytes) and each with complete IPv4 and
 * TCP/UDP checksums. Needs `l3`/`l4` offsets (relative to `off`) and the header lengths from the
 * parser. TCP: sequence numbers advance by the segment size, FIN/PSH only on the last segment, CWR
 * only on the first, IP id increments. UDP (GSO_UDP_L4): each datagram gets its own UDP length.
 * Returns the number of frames written (their lengths in `dstLens`), or -1 when the frame is not a
 * GSO type this handles or there are not enough slots.
 */
export function gsoSegment(
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
  const isTcp = type === VNET.GSO_TCPV4;
  if ((!isTcp && type !== VNET.GSO_UDP_L4) || mss === 0) return -1;
  const proto = buf[l3 + 9]!;
  if ((isTcp && proto !== 6) || (!isTcp && proto !== 17)) return -1;
  const ipHdr = l4 - l3;
  const hdrEnd = l4 + l4HdrLen;
  const ipEnd = l3 + ((buf[l3 + 2]! << 8) | buf[l3 + 3]!);
  const end = Math.min(off + len, ipEnd > hdrEnd ? ipEnd : off + len);
  const payload = end - hdrEnd;
  if (payload <= 0) return -1;
  const n = Math.ceil(payload / mss);
  if (n > dstOffs.length) return -1;
  const hdrBytes = hdrEnd - off; // vnet + ethernet + ip + l4 headers
  if (hdrBytes + mss > slotSize) return -1;
  const id0 = (buf[l3 + 4]! << 8) | buf[l3 + 5]!;
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
    const totLen = ipHdr + l4HdrLen + chunk;
    dst[sl3 + 2] = totLen >>> 8;
    dst[sl3 + 3] = totLen & 0xff;
    const id = (id0 + k) & 0xffff;
    dst[sl3 + 4] = id >>> 8;
    dst[sl3 + 5] = id & 0xff;
    ipv4SetChecksum(dst, sl3, ipHdr);
    gsoFixL4(dst, sl4, isTcp, (seq0 + k * mss) >>> 0, flags0, k, n, chunk);
    dst[sl4 + (isTcp ? 16 : 6)] = 0;
    dst[sl4 + (isTcp ? 17 : 7)] = 0;
    l4SetChecksum(dst, sl3, sl4, sl4 + l4HdrLen + chunk, proto);
    dstLens[k] = hdrBytes + chunk;
  }
  return n;
}
