// PROXY protocol headers (haproxy's proxy-protocol.txt, v1 text and v2 binary) for TCP over IPv4, written in place.
import { writeU32 } from '../packet/checksum.ts';

/** Service setting: no header, the v1 text line, or the v2 binary header. */
export const PP_OFF = 0;
export const PP_V1 = 1;
export const PP_V2 = 2;

/** v2: 12-byte signature, version/command, family/protocol, length, then 4+4+2+2 bytes for TCP4. */
export const PP_V2_TCP4_LEN = 28;
const V2_SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** The longest v1 line for TCP4: "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n". */
export const PP_V1_TCP4_MAX = 56;

const PREFIX_V1 = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20, 0x54, 0x43, 0x50, 0x34, 0x20]; // "PROXY TCP4 "

function decLen(v: number): number {
  return v >= 10000 ? 5 : v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1;
}

function ipLen(a: number): number {
  return decLen(a >>> 24) + decLen((a >>> 16) & 255) + decLen((a >>> 8) & 255) + decLen(a & 255) + 3;
}

/** Length of the header `version` gives this connection (0 for PP_OFF). */
export function ppLength(version: number, src: number, sport: number, dst: number, dport: number): number {
  if (version === PP_V2) return PP_V2_TCP4_LEN;
  if (version === PP_V1) return PREFIX_V1.length + ipLen(src) + 1 + ipLen(dst) + 1 + decLen(sport) + 1 + decLen(dport) + 2;
  return 0;
}

function putDec(buf: Uint8Array, at: number, v: number): number {
  const n = decLen(v);
  for (let i = n - 1; i >= 0; i--) {
    buf[at + i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return at + n;
}

function putIp(buf: Uint8Array, at: number, a: number): number {
  at = putDec(buf, at, a >>> 24);
  buf[at++] = 0x2e;
  at = putDec(buf, at, (a >>> 16) & 255);
  buf[at++] = 0x2e;
  at = putDec(buf, at, (a >>> 8) & 255);
  buf[at++] = 0x2e;
  return putDec(buf, at, a & 255);
}

/**
 * Writes the header for a TCP4 connection from src:sport to dst:dport at `at`; returns its length
 * (as `ppLength`). v2 uses the PROXY command (0x21) and AF_INET/STREAM (0x11), no TLVs.
 */
export function writePp(buf: Uint8Array, at: number, version: number, src: number, sport: number, dst: number, dport: number): number {
  const start = at;
  if (version === PP_V2) {
    for (let i = 0; i < 12; i++) buf[at + i] = V2_SIG[i]!;
    buf[at + 12] = 0x21;
    buf[at + 13] = 0x11;
    buf[at + 14] = 0;
    buf[at + 15] = 12;
    writeU32(buf, at + 16, src);
    writeU32(buf, at + 20, dst);
    at += 24;
    buf[at++] = sport >>> 8;
    buf[at++] = sport & 255;
    buf[at++] = dport >>> 8;
    buf[at++] = dport & 255;
    return at - start;
  }
  if (version !== PP_V1) return 0;
  for (let i = 0; i < PREFIX_V1.length; i++) buf[at + i] = PREFIX_V1[i]!;
  at += PREFIX_V1.length;
  at = putIp(buf, at, src);
  buf[at++] = 0x20;
  at = putIp(buf, at, dst);
  buf[at++] = 0x20;
  at = putDec(buf, at, sport);
  buf[at++] = 0x20;
  at = putDec(buf, at, dport);
  buf[at++] = 0x0d;
  buf[at++] = 0x0a;
  return at - start;
}
