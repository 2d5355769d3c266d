// TCP and UDP headers: field offsets, TCP flags, port access.

/** Field offsets and flag bits of a TCP header. */
export const TCP = {
  SPORT: 0,
  DPORT: 2,
  SEQ: 4,
  ACK: 8,
  DOFF: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECK: 16,
  URG_PTR: 18,
  MIN_HLEN: 20,
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACKF: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Field offsets of a UDP header. */
export const UDP = { SPORT: 0, DPORT: 2, LEN: 4, CHECK: 6, HLEN: 8 } as const;

/** Source port of a TCP/UDP header at `l4`. */
export function l4Sport(buf: Uint8Array, l4: number): number {
  return (buf[l4]! << 8) | buf[l4 + 1]!;
}

/** Destination port of a TCP/UDP header at `l4`. */
export function l4Dport(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
}

/** TCP header length in bytes (data offset × 4). */
export function tcpHeaderLen(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 12]! >>> 4) << 2;
}

/** TCP flag byte (FIN..CWR). */
export function tcpFlags(buf: Uint8Array, l4: number): number {
  return buf[l4 + 13]!;
}
