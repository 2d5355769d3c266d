// IPv6 header: field offsets, next-header numbers, 128-bit addresses as four host-order words, header writing, hop limit.

/** Field offsets inside the 40-byte IPv6 header (RFC 8200 §3). */
export const IP6 = {
  /** Version (4 bits), traffic class (8), flow label (20). */
  VER_TC_FL: 0,
  PAYLOAD_LEN: 4,
  NEXTHDR: 6,
  HOP_LIMIT: 7,
  SADDR: 8,
  DADDR: 24,
  HLEN: 40,
  /** The minimum link MTU every IPv6 link carries (RFC 8200 §5), and the ICMPv6 error size cap. */
  MIN_MTU: 1280,
} as const;

/** Next-header values (the kernel's NEXTHDR_* and IPPROTO_*). */
export const NEXTHDR = {
  HOP: 0,
  TCP: 6,
  UDP: 17,
  /** IPv6-in-IPv6 (ip6ip6, the kernel's IPPROTO_IPV6). */
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AUTH: 51,
  ICMPV6: 58,
  NONE: 59,
  DEST: 60,
} as const;

/**
 * The kernel's ipv6_ext_hdr(): the next-header values ipv6_skip_exthdr walks over. ESP is not among
 * them (its payload is encrypted, so it ends the walk as the upper-layer protocol); NONE is, and ends
 * the walk with "no upper layer".
 */
export function ipv6ExtHdr(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 59 || nh === 60;
}

/** Reads the 128-bit address at `at` into `out[oi..oi+3]` (big-endian words, host-order numbers). */
export function readAddr6(buf: Uint8Array, at: number, out: Uint32Array, oi: number): void {
  for (let w = 0; w < 4; w++, at += 4) {
    out[oi + w] = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  }
}

/** Writes the address `a[ai..ai+3]` at `at`. */
export function writeAddr6(buf: Uint8Array, at: number, a: Uint32Array, ai: number): void {
  for (let w = 0; w < 4; w++, at += 4) {
    const v = a[ai + w]!;
    buf[at] = v >>> 24;
    buf[at + 1] = (v >>> 16) & 0xff;
    buf[at + 2] = (v >>> 8) & 0xff;
    buf[at + 3] = v & 0xff;
  }
}

/** True when the 16 bytes at `at` hold the address `a[ai..ai+3]`. */
export function addr6Equals(buf: Uint8Array, at: number, a: Uint32Array, ai: number): boolean {
  for (let w = 0; w < 4; w++, at += 4) {
    const v = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
    if (v !== a[ai + w]) return false;
  }
  return true;
}

/** True for ff00::/8 (the byte at `at` is the address's first). */
export function addr6IsMulticast(buf: Uint8Array, at: number): boolean {
  return buf[at] === 0xff;
}

/** True for :: (the unspecified address). */
export function addr6IsUnspecified(buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[at + i] !== 0) return false;
  return true;
}

/**
 * Writes a 40-byte IPv6 header at `l3`: version 6, traffic class `tclass`, flow label `flow` (20 bits),
 * payload length, next header, hop limit, and the two addresses from word arrays. Returns l3 + 40.
 */
export function writeIpv6Header(
  buf: Uint8Array,
  l3: number,
  tclass: number,
  flow: number,
  payloadLen: number,
  nexthdr: number,
  hopLimit: number,
  src: Uint32Array,
  si: number,
  dst: Uint32Array,
  di: number,
): number {
  buf[l3] = 0x60 | ((tclass >>> 4) & 0x0f);
  buf[l3 + 1] = ((tclass & 0x0f) << 4) | ((flow >>> 16) & 0x0f);
  buf[l3 + 2] = (flow >>> 8) & 0xff;
  buf[l3 + 3] = flow & 0xff;
  buf[l3 + 4] = (payloadLen >>> 8) & 0xff;
  buf[l3 + 5] = payloadLen & 0xff;
  buf[l3 + 6] = nexthdr & 0xff;
  buf[l3 + 7] = hopLimit & 0xff;
  writeAddr6(buf, l3 + 8, src, si);
  writeAddr6(buf, l3 + 24, dst, di);
  return l3 + 40;
}

/** Traffic class of the header at `l3`. */
export function ipv6TrafficClass(buf: Uint8Array, l3: number): number {
  return ((buf[l3]! & 0x0f) << 4) | (buf[l3 + 1]! >>> 4);
}

/** Flow label (20 bits) of the header at `l3`. */
export function ipv6FlowLabel(buf: Uint8Array, l3: number): number {
  return ((buf[l3 + 1]! & 0x0f) << 16) | (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
}

/**
 * Decrements the hop limit (no header checksum in IPv6). Returns the new value; a hop limit of 0 or
 * 1 is left untouched and 0 is returned, so the caller answers time exceeded instead of forwarding.
 */
export function ipv6DecHopLimit(buf: Uint8Array, l3: number): number {
  const h = buf[l3 + 7]!;
  if (h <= 1) return 0;
  buf[l3 + 7] = h - 1;
  return h - 1;
}

/**
 * Parses IPv6 text (RFC 4291 §2.2: hex groups, one "::", an embedded dotted quad at the end) into
 * `out[oi..oi+3]`. Returns false (out unspecified) when malformed. Slow path (control plane, tests).
 */
export function ipv6FromString(s: string, out: Uint32Array, oi: number): boolean {
  if (s.length === 0 || s.length > 45) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const q = g.split('.');
        if (q.length !== 4 || q.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255 || (x.length > 1 && x[0] === '0'))) return null;
        out.push((Number(q[0]) << 8) | Number(q[1]), (Number(q[2]) << 8) | Number(q[3]));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return false;
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return false;
  const all = [...head, ...new Array<number>(8 - n).fill(0), ...tail];
  for (let w = 0; w < 4; w++) out[oi + w] = ((all[2 * w]! << 16) | all[2 * w + 1]!) >>> 0;
  return true;
}

/**
 * Formats `a[ai..ai+3]` as glibc's inet_ntop(AF_INET6) does (what ipvsadm prints): lower-case groups
 * without leading zeros, the first longest run of two or more zero groups as "::", and the last 32 bits
 * as a dotted quad for ::ffff:a.b.c.d and ::a.b.c.d (not ::1 or ::). Slow path.
 */
export function ipv6ToString(a: ArrayLike<number>, ai = 0): string {
  const g: number[] = [];
  for (let w = 0; w < 4; w++) g.push(a[ai + w]! >>> 16, a[ai + w]! & 0xffff);
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      const v = a[ai + 3]!;
      s += `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
      break;
    }
    s += g[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) s += ':';
  return s;
}
