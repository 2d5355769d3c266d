// VRRP advertisements on the wire: v2 (RFC 3768, with PASS authentication) and v3 (RFC 5798) for IPv4, built and checked with each version's checksum.
import { csumFold, pseudoSum, sum16, readU32, writeU32 } from '../packet/checksum.ts';

/** IP protocol number of VRRP. */
export const IPPROTO_VRRP = 112;
/** The IPv4 group adverts go to (224.0.0.18), host order. */
export const VRRP_GROUP = 0xe0000012;
/** Adverts are sent with TTL 255 and, multicast, accepted only with it (RFC 5798 §5.1.1.3). */
export const VRRP_TTL = 255;
export const VRRP_TYPE_ADVERT = 1;
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
/** v2 authentication data is always 8 bytes (zeros without authentication). */
export const AUTH_LEN = 8;
const HDR = 8;

/** What an advert says. `adverInt` is in centiseconds for both versions (v2 carries whole seconds). */
export interface AdvertSpec {
  version: 2 | 3;
  vrid: number;
  priority: number;
  adverIntCs: number;
  addrs: readonly number[];
  /** v2 only: AUTH_NONE or AUTH_PASS. */
  authType?: number;
  /** v2 only: the 8 bytes of the password (zero padded). */
  authData?: Uint8Array;
}

/** The VRRP part of an advert's length in bytes. */
export function advertLength(version: number, naddr: number): number {
  return HDR + 4 * naddr + (version === 2 ? AUTH_LEN : 0);
}

/** keepalived's auth_pass: up to 8 bytes of the text, zero padded. */
export function passwordBytes(pass: string): Uint8Array {
  const out = new Uint8Array(AUTH_LEN);
  out.set(new TextEncoder().encode(pass).subarray(0, AUTH_LEN));
  return out;
}

/**
 * Writes an advert into `out` at `off` (which must hold advertLength bytes) with its checksum; v3's
 * covers the IPv4 pseudo-header (`src`, `dst`), v2's only the VRRP message. Returns the length.
 */
export function writeAdvert(out: Uint8Array, off: number, a: AdvertSpec, src: number, dst: number): number {
  const len = advertLength(a.version, a.addrs.length);
  out.fill(0, off, off + len);
  out[off] = (a.version << 4) | VRRP_TYPE_ADVERT;
  out[off + 1] = a.vrid;
  out[off + 2] = a.priority;
  out[off + 3] = a.addrs.length;
  if (a.version === 2) {
    out[off + 4] = a.authType ?? AUTH_NONE;
    out[off + 5] = Math.max(1, Math.min(255, Math.round(a.adverIntCs / 100)));
  } else {
    const cs = Math.max(1, Math.min(4095, Math.round(a.adverIntCs)));
    out[off + 4] = cs >>> 8;
    out[off + 5] = cs & 0xff;
  }
  for (let i = 0; i < a.addrs.length; i++) writeU32(out, off + HDR + 4 * i, a.addrs[i]!);
  if (a.version === 2 && a.authType === AUTH_PASS && a.authData) out.set(a.authData.subarray(0, AUTH_LEN), off + HDR + 4 * a.addrs.length);
  const seed = a.version === 3 ? pseudoSum(src >>> 0, dst >>> 0, IPPROTO_VRRP, len) : 0;
  const c = ~sum16(out, off, off + len, csumFold(seed)) & 0xffff;
  out[off + 6] = c >>> 8;
  out[off + 7] = c & 0xff;
  return len;
}

/** Builds an advert as a new buffer (slow path: a few per second). */
export function buildAdvert(a: AdvertSpec, src: number, dst: number): Uint8Array {
  const out = new Uint8Array(advertLength(a.version, a.addrs.length));
  writeAdvert(out, 0, a, src, dst);
  return out;
}

/** Why an advert was refused; the names are the counters' labels. */
export const enum Bad {
  NONE = 0,
  /** Shorter than the fixed header. */
  TRUNCATED,
  VERSION,
  TYPE,
  /** The length does not match the address count (and, v2, the authentication data). */
  LENGTH,
  CHECKSUM,
  TTL,
  /** No instance has this VRID on the arrival interface. */
  VRID,
  /** v2 authentication type or password differs. */
  AUTH,
  /** v2 advert interval differs from ours (keepalived drops these: two routers would both be master); v3 interval 0. */
  INTERVAL,
  /** A unicast advert from a source that is not a configured peer, or multicast where unicast is configured (and the reverse). */
  PEER,
  /** Our own advert, looped back. */
  OWN,
}

export const BAD_NAMES = ['none', 'truncated', 'version', 'type', 'length', 'checksum', 'ttl', 'vrid', 'auth', 'interval', 'peer', 'own'] as const;
export const BAD_COUNT = BAD_NAMES.length;

/** A checked advert: fields copied out of the frame (reused; no allocation per packet). */
export class Advert {
  version = 0;
  vrid = 0;
  priority = 0;
  naddr = 0;
  /** Centiseconds (v2's seconds × 100). */
  adverIntCs = 0;
  authType = 0;
  /** Offset of the first address and of the v2 authentication data in the buffer. */
  addrOff = 0;
  authOff = 0;
  saddr = 0;
  daddr = 0;
  ttl = 0;
}

/**
 * Checks the parts of an advert that do not depend on the instance: length ≥ header, version 2 or 3,
 * type ADVERTISEMENT, a length that matches the address count exactly, and the checksum. The VRRP
 * message is [l4, end); `saddr`/`daddr`/`ttl` come from its IPv4 header. Never throws.
 */
export function checkAdvert(buf: Uint8Array, l4: number, end: number, saddr: number, daddr: number, ttl: number, out: Advert): Bad {
  if (l4 < 0 || end > buf.length || end - l4 < HDR) return Bad.TRUNCATED;
  const vt = buf[l4]!;
  const version = vt >>> 4;
  if (version !== 2 && version !== 3) return Bad.VERSION;
  if ((vt & 0x0f) !== VRRP_TYPE_ADVERT) return Bad.TYPE;
  const naddr = buf[l4 + 3]!;
  const len = end - l4;
  if (len !== advertLength(version, naddr)) return Bad.LENGTH;
  const seed = version === 3 ? pseudoSum(saddr >>> 0, daddr >>> 0, IPPROTO_VRRP, len) : 0;
  if (sum16(buf, l4, end, csumFold(seed)) !== 0xffff) return Bad.CHECKSUM;
  out.version = version;
  out.vrid = buf[l4 + 1]!;
  out.priority = buf[l4 + 2]!;
  out.naddr = naddr;
  if (version === 2) {
    out.authType = buf[l4 + 4]!;
    out.adverIntCs = buf[l4 + 5]! * 100;
  } else {
    out.authType = 0;
    out.adverIntCs = ((buf[l4 + 4]! & 0x0f) << 8) | buf[l4 + 5]!;
  }
  out.addrOff = l4 + HDR;
  out.authOff = l4 + HDR + 4 * naddr;
  out.saddr = saddr >>> 0;
  out.daddr = daddr >>> 0;
  out.ttl = ttl;
  return Bad.NONE;
}

/** The i-th address an advert carries. */
export function advertAddr(buf: Uint8Array, a: Advert, i: number): number {
  return readU32(buf, a.addrOff + 4 * i);
}

/** True when the advert's v2 authentication data equals `pass` (8 bytes), compared without early exit. */
export function authMatches(buf: Uint8Array, a: Advert, pass: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < AUTH_LEN; i++) d |= buf[a.authOff + i]! ^ pass[i]!;
  return d === 0;
}
