// Receive coalescing for the TUN decapsulator: consecutive TCP segments of one flow become one GSO frame.
//
// The kernel's GRO does this for a NIC; a userspace decapsulator writing one 1,480-byte segment per
// write() makes the real server's stack handle every segment on its own. Segments are merged under the
// rules Linux's tcp_gro_receive applies: same flow, contiguous sequence, same ACK, same TCP options, only
// ACK/PSH flags, every segment but the last exactly the first's size, PSH or a short segment ends the run.
// Each segment's checksum is verified before it joins; the merged frame is written with a virtio-net
// header (GSO TCPV4, partial checksum), which the TUN turns into one skb. Everything else is written as
// is, behind a zero header.
import { csumFold, pseudoSum, sum16 } from '../packet/checksum.ts';

/** Bytes of the virtio-net header the TUN expects in front of each packet (IFF_VNET_HDR). */
export const TUN_VNET_LEN = 10;
/** Merged IP packets stay below this, so they fit the decapsulator's 64 KB slot (and the 16-bit length). */
export const GRO_MAX_IP = 63 * 1024;

const TCP = 6;
const ACK = 0x10;
const PSH = 0x08;

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const put16 = (b: Uint8Array, o: number, v: number) => {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
};
const putLe16 = (b: Uint8Array, o: number, v: number) => {
  b[o] = v & 0xff;
  b[o + 1] = v >>> 8;
};

/** Counters of `groBurst`: [segments merged into an earlier one, GSO frames written]. */
export const GRO = { MERGED: 0, FRAMES: 1, COUNT: 2 } as const;

/**
 * Payload length of an IPv4/TCP segment at `o` (`len` bytes) that may be merged, or -1: no IP options,
 * not a fragment, TCP with only ACK (and PSH), some payload, and a checksum that verifies.
 */
function mergeable(b: Uint8Array, o: number, len: number): number {
  if (len < 40 || b[o] !== 0x45 || b[o + 9] !== TCP || (be16(b, o + 6) & 0x3fff) !== 0) return -1;
  const total = be16(b, o + 2);
  if (total !== len) return -1;
  const doff = (b[o + 32]! >> 4) << 2;
  if (doff < 20 || 20 + doff >= total) return -1;
  if ((b[o + 33]! & ~PSH) !== ACK || (b[o + 32]! & 0x0f) !== 0) return -1;
  const l4 = total - 20;
  if (csumFold(sum16(b, o + 20, o + total, pseudoSum(be32(b, o + 12), be32(b, o + 16), TCP, l4))) !== 0xffff) return -1;
  return l4 - doff;
}

/** True when the segment at `o` continues the run whose first segment is at `h` (flow, ACK, options). */
function sameRun(b: Uint8Array, h: number, o: number): boolean {
  // Addresses and ports: bytes 12..23 of the IP packet; TOS and TTL too, as GRO wants.
  if (b[h + 1] !== b[o + 1] || b[h + 8] !== b[o + 8]) return false;
  for (let k = 12; k < 24; k++) if (b[h + k] !== b[o + k]) return false;
  if (be32(b, h + 28) !== be32(b, o + 28)) return false; // ACK number
  const doff = (b[h + 32]! >> 4) << 2;
  if (((b[o + 32]! >> 4) << 2) !== doff) return false;
  for (let k = 40; k < 20 + doff; k++) if (b[h + k] !== b[o + k]) return false; // options, e.g. timestamps
  return true;
}

/**
 * Coalesces the inner IPv4 packets at offsets[i] (lengths[i] bytes, 0 = skip) in place, and puts a
 * TUN_VNET_LEN-byte virtio-net header in front of every packet it keeps (the caller guarantees that much
 * room before each one: the outer header it stripped). On return offsets/lengths describe header + packet;
 * merged-away entries have length 0. Returns the number of entries left to write.
 */
export function groBurst(b: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, n: number, counters: Float64Array): number {
  let head = -1; // index of the open run
  let hOff = 0;
  let hLen = 0; // IP length of the open run so far
  let mss = 0;
  let nextSeq = 0;
  let segs = 0;
  let left = 0;
  const close = () => {
    if (head < 0) return;
    const vh = hOff - TUN_VNET_LEN;
    b.fill(0, vh, hOff);
    if (segs > 1) {
      put16(b, hOff + 2, hLen);
      b[hOff + 10] = 0;
      b[hOff + 11] = 0;
      const ipSum = ~csumFold(sum16(b, hOff, hOff + 20, 0)) & 0xffff;
      put16(b, hOff + 10, ipSum);
      const doff = (b[hOff + 32]! >> 4) << 2;
      // A partial checksum: the folded pseudo-header sum, finished by whoever needs it (RFC 1071 sum).
      put16(b, hOff + 36, csumFold(pseudoSum(be32(b, hOff + 12), be32(b, hOff + 16), TCP, hLen - 20)));
      b[vh] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
      b[vh + 1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
      putLe16(b, vh + 2, 20 + doff); // hdr_len
      putLe16(b, vh + 4, mss); // gso_size
      putLe16(b, vh + 6, 20); // csum_start
      putLe16(b, vh + 8, 16); // csum_offset
      counters[GRO.FRAMES]! += 1;
    } else if (mss > 0) {
      b[vh] = 2; // VIRTIO_NET_HDR_F_DATA_VALID: verified above
    }
    offsets[head] = vh;
    lengths[head] = hLen + TUN_VNET_LEN;
    head = -1;
  };
  for (let i = 0; i < n; i++) {
    const o = offsets[i]!;
    const len = lengths[i]!;
    if (len === 0) continue;
    const pay = mergeable(b, o, len);
    if (head >= 0 && pay > 0 && segs > 0 && mss > 0) {
      const doff = (b[o + 32]! >> 4) << 2;
      if (pay <= mss && be32(b, o + 24) === nextSeq && hLen + pay <= GRO_MAX_IP && sameRun(b, hOff, o)) {
        b.copyWithin(hOff + hLen, o + 20 + doff, o + len);
        hLen += pay;
        nextSeq = (nextSeq + pay) >>> 0;
        b[hOff + 33] = b[hOff + 33]! | b[o + 33]!; // PSH travels to the merged segment
        segs++;
        lengths[i] = 0;
        counters[GRO.MERGED]! += 1;
        if (pay < mss || (b[o + 33]! & PSH) !== 0) close();
        continue;
      }
    }
    close();
    head = i;
    hOff = o;
    hLen = len;
    segs = 1;
    left++;
    if (pay > 0) {
      mss = pay;
      nextSeq = (be32(b, o + 24) + pay) >>> 0;
      if ((b[o + 33]! & PSH) !== 0) close(); // nothing may follow a PSH in one GSO frame
    } else {
      mss = 0; // not TCP data: written alone
      close();
    }
  }
  close();
  return left;
}
