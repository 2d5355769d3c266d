// Internet checksums: full sums over byte ranges, pseudo-headers, RFC 1624 incremental updates and the partial rule.

/**
 * Terms used throughout: a "sum" is an unfolded one's-complement accumulator (a plain number < 2^32);
 * `csumFold` reduces it to 16 bits with end-around carry; a "checksum" is the complement of a folded sum,
 * what a complete header field holds. A *partial* checksum field (virtio NEEDS_CSUM / CHECKSUM_PARTIAL)
 * holds the folded pseudo-header sum, not complemented.
 */

/** Folds an accumulator (< 2^32) to 16 bits with end-around carry. Not complemented. */
export function csumFold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Adds the bytes [start, end) of `buf` as big-endian 16-bit words to `sum` (an odd last byte is padded
 * with zero, as RFC 1071 says). Returns the sum folded to 16 bits (not complemented), for any range length.
 */
export function sum16(buf: Uint8Array, start: number, end: number, sum: number): number {
  return end - start >= WORD_PATH_MIN ? sum16Words(buf, start, end, sum) : sum16Bytes(buf, start, end, sum);
}

/** Below this many bytes (headers) the byte loop wins; above it (payloads) the 32-bit loop. */
const WORD_PATH_MIN = 64;

function sum16Bytes(buf: Uint8Array, start: number, end: number, sum: number): number {
  let i = start;
  let s = 0;
  for (; i < end - 1; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return csumFold(csumFold(sum) + csumFold(s));
}

// One Int32Array view (int32 loads stay small integers for V8) over the buffer last summed (the data plane's arena, in practice), so the word
// loop allocates nothing per call.
let viewOf: ArrayBufferLike | null = null;
let view32: Int32Array<ArrayBufferLike> = new Int32Array(0);

/**
 * The same sum read 32 bits at a time. Each byte is added in the lane its absolute address gives it in
 * a little-endian word (even address: low byte, odd: high byte), which is the sum of the 16-bit words
 * paired from an even address, byte-swapped (RFC 1071 §2(B): the sum is byte-order independent). A range
 * starting at an even address wants its first byte high, so the folded lane sum is swapped back; one
 * starting at an odd address pairs from odd addresses, which the lane sum already is.
 */
function sum16Words(buf: Uint8Array, start: number, end: number, sum: number): number {
  const base = buf.byteOffset;
  const ab = buf.buffer;
  if (ab !== viewOf) {
    view32 = new Int32Array(ab, 0, ab.byteLength >>> 2);
    viewOf = ab;
  }
  const v = view32;
  let a = base + start;
  const e = base + end;
  let s = 0;
  for (; (a & 3) !== 0; a++) s += (a & 1) !== 0 ? buf[a - base]! << 8 : buf[a - base]!;
  let w = a >>> 2;
  const wEnd = e >>> 2;
  while (w < wEnd) {
    // At most 8K words between folds: the accumulator stays a small integer.
    let stop = w + 8192;
    if (stop > wEnd) stop = wEnd;
    let t = 0;
    for (; w < stop; w++) {
      const x = v[w]!;
      t += (x & 0xffff) + (x >>> 16);
    }
    s = csumFold(s + t);
  }
  for (a = w << 2; a < e; a++) s += (a & 1) !== 0 ? buf[a - base]! << 8 : buf[a - base]!;
  let r = csumFold(s);
  if (((base + start) & 1) === 0) r = ((r & 0xff) << 8) | (r >>> 8);
  return csumFold(csumFold(sum) + r);
}

/** Sum of the TCP/UDP pseudo-header (addresses as uint32, protocol, L4 length), unfolded. */
export function pseudoSum(saddr: number, daddr: number, proto: number, l4len: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + l4len;
}

/** Reads the IPv4 header checksum that the header at `l3` (length `hlen` bytes) should carry. */
export function ipv4HeaderChecksum(buf: Uint8Array, l3: number, hlen: number): number {
  // Sum the whole header, then take the checksum field back out, so no byte has to be zeroed.
  const field = (buf[l3 + 10]! << 8) | buf[l3 + 11]!;
  const s = sum16(buf, l3, l3 + hlen, 0) + (~field & 0xffff);
  return ~csumFold(s) & 0xffff;
}

/** Computes and stores the IPv4 header checksum. */
export function ipv4SetChecksum(buf: Uint8Array, l3: number, hlen: number): void {
  buf[l3 + 10] = 0;
  buf[l3 + 11] = 0;
  const c = ~csumFold(sum16(buf, l3, l3 + hlen, 0)) & 0xffff;
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c & 0xff;
}

/** True when the IPv4 header at `l3` (hlen bytes) verifies: the folded sum over it is 0xffff. */
export function ipv4ChecksumOk(buf: Uint8Array, l3: number, hlen: number): boolean {
  return csumFold(sum16(buf, l3, l3 + hlen, 0)) === 0xffff;
}

/** Offset of the checksum field inside a TCP (16) or UDP (6) header; -1 for other protocols. */
export function l4CsumOffset(proto: number): number {
  return proto === 6 ? 16 : proto === 17 ? 6 : -1;
}

/**
 * Full TCP/UDP checksum of the segment [l4, end) with the pseudo-header of the IPv4 header at `l3`,
 * computed as if the checksum field were zero. UDP: a computed 0 is returned as 0xffff (RFC 768).
 */
export function l4Checksum(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): number {
  const at = l4 + l4CsumOffset(proto);
  const field = (buf[at]! << 8) | buf[at + 1]!;
  const s = sum16(buf, l4, end, pseudoSum(readU32(buf, l3 + 12), readU32(buf, l3 + 16), proto, end - l4));
  let c = ~csumFold(s + (~field & 0xffff)) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  return c;
}

/** Computes and stores the full TCP or UDP checksum (see `l4Checksum`). */
export function l4SetChecksum(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): void {
  const c = l4Checksum(buf, l3, l4, end, proto);
  const at = l4 + l4CsumOffset(proto);
  buf[at] = c >>> 8;
  buf[at + 1] = c & 0xff;
}

/** True when the TCP/UDP segment verifies against its pseudo-header (UDP checksum 0 means none: true). */
export function l4ChecksumOk(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): boolean {
  if (proto === 17 && buf[l4 + 6] === 0 && buf[l4 + 7] === 0) return true;
  const s = sum16(buf, l4, end, pseudoSum(readU32(buf, l3 + 12), readU32(buf, l3 + 16), proto, end - l4));
  return csumFold(s) === 0xffff;
}

/**
 * The value a partial (NEEDS_CSUM) TCP/UDP checksum field holds for this segment: the folded
 * pseudo-header sum, not complemented. Used to build partial frames and to check them.
 */
export function l4PartialSeed(buf: Uint8Array, l3: number, l4: number, end: number, proto: number): number {
  return csumFold(pseudoSum(readU32(buf, l3 + 12), readU32(buf, l3 + 16), proto, end - l4));
}

/** ICMP checksum of the message [l4, end), as if the checksum field (l4+2) were zero. */
export function icmpChecksum(buf: Uint8Array, l4: number, end: number): number {
  const field = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  return ~csumFold(sum16(buf, l4, end, 0) + (~field & 0xffff)) & 0xffff;
}

/** Computes and stores the ICMP checksum of the message [l4, end). */
export function icmpSetChecksum(buf: Uint8Array, l4: number, end: number): void {
  const c = icmpChecksum(buf, l4, end);
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
}

/** RFC 1624 eq. 3 for one changed 16-bit word: returns the new complete checksum. */
export function csumReplace16(check: number, oldw: number, neww: number): number {
  return ~csumFold((~check & 0xffff) + (~oldw & 0xffff) + (neww & 0xffff)) & 0xffff;
}

/** RFC 1624 eq. 3 for a changed 32-bit value (an address): returns the new complete checksum. */
export function csumReplace32(check: number, oldv: number, newv: number): number {
  const s =
    (~check & 0xffff) + (~oldv >>> 16) + (~oldv & 0xffff) + (newv >>> 16) + (newv & 0xffff);
  return ~csumFold(s) & 0xffff;
}

/**
 * Partial-checksum rule for a changed 32-bit pseudo-header value (an address): the field holds the
 * folded pseudo-header sum S, so S' = S ⊕ ~old ⊕ new, with no complement (io-offloads.md A.2).
 */
export function csumPartialReplace32(seed: number, oldv: number, newv: number): number {
  return csumFold(seed + (~oldv >>> 16) + (~oldv & 0xffff) + (newv >>> 16) + (newv & 0xffff));
}

/** Reads a big-endian uint32 (returned unsigned). */
export function readU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

/** Writes a big-endian uint32. */
export function writeU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/** Reads a big-endian uint16. */
export function readU16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

/** Writes a big-endian uint16. */
export function writeU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}
