// In-place NAT rewrites of IPv6 addresses and ports that keep the TCP/UDP/ICMPv6 checksum right (complete or partial).

import { addr6Diff, csumApplyDiff, csumPartialApplyDiff, l4CsumOffset6 } from './checksum6.ts';
import { writeAddr6 } from './ipv6.ts';
import { PF6, type ParsedFrame6 } from './parse6.ts';
import { setDport, setSport } from './rewrite.ts';

function setAddr6(
  buf: Uint8Array,
  l3: number,
  l4: number,
  proto: number,
  partial: boolean,
  field: number,
  a: Uint32Array,
  ai: number,
): void {
  const at = l3 + field;
  const diff = addr6Diff(buf, at, a, ai);
  writeAddr6(buf, at, a, ai);
  const co = l4 >= 0 ? l4CsumOffset6(proto) : -1;
  if (co < 0) return;
  const ca = l4 + co;
  const c = (buf[ca]! << 8) | buf[ca + 1]!;
  let n: number;
  if (partial) {
    n = csumPartialApplyDiff(c, diff);
  } else {
    // A zero UDP checksum is invalid over IPv6, but it is the sender's to fix: leave it as received.
    if (proto === 17 && c === 0) return;
    n = csumApplyDiff(c, diff);
    if (proto === 17 && n === 0) n = 0xffff;
  }
  buf[ca] = n >>> 8;
  buf[ca + 1] = n & 0xff;
}

/**
 * Sets the destination address of the IPv6 datagram at `l3` to `a[ai..ai+3]` and, when `l4 >= 0`,
 * updates the TCP, UDP or ICMPv6 checksum for it (all three cover the pseudo-header; `partial`: the
 * field holds a NEEDS_CSUM seed). Pass l4 = -1 for a non-first fragment. No IP header checksum exists.
 */
export function setDaddr6(buf: Uint8Array, l3: number, l4: number, proto: number, a: Uint32Array, ai: number, partial: boolean): void {
  setAddr6(buf, l3, l4, proto, partial, 24, a, ai);
}

/** Sets the source address; same rules as `setDaddr6`. */
export function setSaddr6(buf: Uint8Array, l3: number, l4: number, proto: number, a: Uint32Array, ai: number, partial: boolean): void {
  setAddr6(buf, l3, l4, proto, partial, 8, a, ai);
}

/** `setDaddr6` for a parsed frame: its offsets and checksum state; updates `p.daddr`. */
export function frameSetDaddr6(buf: Uint8Array, p: ParsedFrame6, a: Uint32Array, ai: number): void {
  setAddr6(buf, p.l3, (p.flags & PF6.L4) !== 0 ? p.l4 : -1, p.proto, (p.flags & PF6.CSUM_PARTIAL) !== 0, 24, a, ai);
  for (let w = 0; w < 4; w++) p.daddr[w] = a[ai + w]!;
}

/** `setSaddr6` for a parsed frame; updates `p.saddr`. */
export function frameSetSaddr6(buf: Uint8Array, p: ParsedFrame6, a: Uint32Array, ai: number): void {
  setAddr6(buf, p.l3, (p.flags & PF6.L4) !== 0 ? p.l4 : -1, p.proto, (p.flags & PF6.CSUM_PARTIAL) !== 0, 8, a, ai);
  for (let w = 0; w < 4; w++) p.saddr[w] = a[ai + w]!;
}

/** Sets the TCP/UDP destination port of a parsed IPv6 frame (the same rules as IPv4: a partial seed is left alone). */
export function frameSetDport6(buf: Uint8Array, p: ParsedFrame6, port: number): void {
  if ((p.flags & PF6.L4) === 0 || (p.proto !== 6 && p.proto !== 17)) return;
  setDport(buf, p.l4, p.proto, port, (p.flags & PF6.CSUM_PARTIAL) !== 0);
  p.dport = port;
}

/** Sets the TCP/UDP source port of a parsed IPv6 frame. */
export function frameSetSport6(buf: Uint8Array, p: ParsedFrame6, port: number): void {
  if ((p.flags & PF6.L4) === 0 || (p.proto !== 6 && p.proto !== 17)) return;
  setSport(buf, p.l4, p.proto, port, (p.flags & PF6.CSUM_PARTIAL) !== 0);
  p.sport = port;
}
