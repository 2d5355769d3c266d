// IPv4 and MAC address conversions shared by the control plane (never used per packet with strings).

/** Dotted quad → unsigned 32-bit integer; NaN when not a valid IPv4 address. */
export function ipToU32(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return NaN;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return NaN;
    const n = Number(p);
    if (n > 255) return NaN;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Unsigned 32-bit integer → dotted quad. */
export function u32ToIp(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Prefix length → netmask as an unsigned 32-bit integer. */
export function prefixToMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Netmask → prefix length, or -1 when the mask is not contiguous. */
export function maskToPrefix(mask: number): number {
  const m = mask >>> 0;
  let len = 0;
  while (len < 32 && (m & (0x80000000 >>> len)) !== 0) len++;
  return prefixToMask(len) === m ? len : -1;
}

/** "02:00:00:00:00:01" → 6 bytes. Throws on a malformed string (slow path only). */
export function parseMac(s: string): Uint8Array {
  const parts = s.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`bad MAC address: ${s}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** 6 bytes at `off` → "02:00:00:00:00:01". */
export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i]!.toString(16).padStart(2, '0'));
  return out.join(':');
}
