// The kernel's hsiphash() of one 32-bit word on 64-bit hosts (SipHash-1-3, low 32 bits), without BigInt or allocation.

/** A 128-bit SipHash key as four 32-bit halves: k0 = (k0hi:k0lo), k1 = (k1hi:k1lo). */
export interface SipKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

/**
 * hsiphash(&v, 4, key) as lib/siphash.c computes it when BITS_PER_LONG == 64: "HalfSipHash" is there
 * SipHash-1-3 (one compression round, three finalization rounds); the 4 message bytes are read
 * little-endian into the last block, whose top byte holds the length; the result is the low 32 bits
 * of v0^v1^v2^v3. 64-bit lanes are carried as (hi, lo) pairs of unsigned 32-bit numbers.
 */
export function hsiphash32(key: SipKey, v: number): number {
  let v0h = (0x736f6d65 ^ key.k0hi) >>> 0;
  let v0l = (0x70736575 ^ key.k0lo) >>> 0;
  let v1h = (0x646f7261 ^ key.k1hi) >>> 0;
  let v1l = (0x6e646f6d ^ key.k1lo) >>> 0;
  let v2h = (0x6c796765 ^ key.k0hi) >>> 0;
  let v2l = (0x6e657261 ^ key.k0lo) >>> 0;
  let v3h = (0x74656462 ^ key.k1hi) >>> 0;
  let v3l = (0x79746573 ^ key.k1lo) >>> 0;
  const bh = 0x04000000; // length 4 in the top byte
  const bl = v >>> 0;
  v3h = (v3h ^ bh) >>> 0;
  v3l = (v3l ^ bl) >>> 0;
  let lo = 0;
  let th = 0;
  let tl = 0;
  for (let r = 0; r < 4; r++) {
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    lo = (v0l + v1l) >>> 0;
    v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0;
    v0l = lo;
    th = ((v1h << 13) | (v1l >>> 19)) >>> 0;
    tl = ((v1l << 13) | (v1h >>> 19)) >>> 0;
    v1h = (th ^ v0h) >>> 0;
    v1l = (tl ^ v0l) >>> 0;
    th = v0h;
    v0h = v0l;
    v0l = th;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    lo = (v2l + v3l) >>> 0;
    v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0;
    v2l = lo;
    th = ((v3h << 16) | (v3l >>> 16)) >>> 0;
    tl = ((v3l << 16) | (v3h >>> 16)) >>> 0;
    v3h = (th ^ v2h) >>> 0;
    v3l = (tl ^ v2l) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    lo = (v0l + v3l) >>> 0;
    v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0;
    v0l = lo;
    th = ((v3h << 21) | (v3l >>> 11)) >>> 0;
    tl = ((v3l << 21) | (v3h >>> 11)) >>> 0;
    v3h = (th ^ v0h) >>> 0;
    v3l = (tl ^ v0l) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    lo = (v2l + v1l) >>> 0;
    v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0;
    v2l = lo;
    th = ((v1h << 17) | (v1l >>> 15)) >>> 0;
    tl = ((v1l << 17) | (v1h >>> 15)) >>> 0;
    v1h = (th ^ v2h) >>> 0;
    v1l = (tl ^ v2l) >>> 0;
    th = v2h;
    v2h = v2l;
    v2l = th;
    if (r === 0) {
      // End of the single compression round, then finalization.
      v0h = (v0h ^ bh) >>> 0;
      v0l = (v0l ^ bl) >>> 0;
      v2l = (v2l ^ 0xff) >>> 0;
    }
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}
