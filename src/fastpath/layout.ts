// The fast-path map's key and value layout: the one definition both the BPF program and the TypeScript side use.

/**
 * Key: one direction of a connection, the 5-tuple as it is in the packet (addresses and ports in
 * network byte order, exactly the bytes of the IPv4/L4 headers), so the program copies it from the
 * frame without swapping. Client → VIP frames use the client-side key (CIP, VIP, cport, vport); NAT
 * replies the real-server-side key (RIP, CIP, rport, cport): the two keys the conn table hashes.
 */
export const KEY = {
  SADDR: 0,
  DADDR: 4,
  SPORT: 8,
  DPORT: 10,
  PROTO: 12,
  /** Bytes 13..15 are zero. */
  SIZE: 16,
} as const;

/** What the program does with a hit. */
export const METHOD = {
  /** Destination → RIP:rport (client → real server). */
  NAT_IN: 1,
  /** Source → VIP:vport, TTL − 1 (real server → client). */
  NAT_OUT: 2,
  /** Only the MACs change. */
  DR: 3,
  /** IPIP outer header DIP → RIP. */
  TUN: 4,
} as const;
export type Method = (typeof METHOD)[keyof typeof METHOD];

/** Value flags. */
export const VFLAG = {
  /** The frame is on the FORWARD path: TTL ≤ 1 is punted (time-exceeded is TS's), else decremented. */
  FORWARD: 1,
} as const;

/**
 * Value: what to do, written by TypeScript, plus counters the program updates. Addresses and ports
 * in network byte order (as they go into the packet); `MTU` and `IFINDEX` in host order.
 */
export const VALUE = {
  METHOD: 0, // u8
  FLAGS: 1, // u8
  MTU: 2, // u16: egress MTU (TUN: a packet or GSO segment + 20 above it is punted)
  IFINDEX: 4, // u32: egress interface (bpf_redirect)
  ADDR: 8, // u32: NAT_IN new daddr, NAT_OUT new saddr
  PORT: 12, // u16: NAT_IN new dport, NAT_OUT new sport
  SIDE: 14, // u8: which key this is (0 client side, 1 NAT reply), for TS reading the map back; the program ignores it
  /** 15 zero. */
  DMAC: 16, // 6 bytes: next hop's MAC
  SMAC: 22, // 6 bytes: egress interface's MAC (DMAC + SMAC = the 12 bytes written at offset 0)
  TUN_SADDR: 28, // u32: outer source (DIP)
  TUN_DADDR: 32, // u32: outer destination (RIP)
  /** 36..39 zero. */
  PACKETS: 40, // u64: frames (skbs; a GSO skb counts once) the program forwarded
  BYTES: 48, // u64: their IP bytes as received (IP total length, as the TS path counts; a GSO skb's whole)
  LAST_SEEN: 56, // u64: bpf_ktime_get_ns() of the last one (CLOCK_MONOTONIC ns)
  SIZE: 64,
} as const;

/** An entry to install, in TypeScript terms (addresses as unsigned 32-bit numbers, ports as numbers). */
export interface FastEntry {
  method: Method;
  forward: boolean;
  mtu: number;
  ifindex: number;
  addr: number;
  port: number;
  dmac: Uint8Array;
  smac: Uint8Array;
  tunSaddr: number;
  tunDaddr: number;
}

const be32 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
};

/** Fills `out` (KEY.SIZE bytes) with the key of a direction. */
export function encodeKey(out: Uint8Array, proto: number, saddr: number, daddr: number, sport: number, dport: number): Uint8Array {
  out.fill(0, 0, KEY.SIZE);
  be32(out, KEY.SADDR, saddr);
  be32(out, KEY.DADDR, daddr);
  out[KEY.SPORT] = sport >>> 8;
  out[KEY.SPORT + 1] = sport & 0xff;
  out[KEY.DPORT] = dport >>> 8;
  out[KEY.DPORT + 1] = dport & 0xff;
  out[KEY.PROTO] = proto;
  return out;
}

/** Fills `out` (VALUE.SIZE bytes) with an entry for the client side (`reply` false) or the NAT reply; the counters start at zero. */
export function encodeValue(out: Uint8Array, e: FastEntry, reply = false): Uint8Array {
  out.fill(0, 0, VALUE.SIZE);
  out[VALUE.SIDE] = reply ? 1 : 0;
  const dv = new DataView(out.buffer, out.byteOffset, VALUE.SIZE);
  out[VALUE.METHOD] = e.method;
  out[VALUE.FLAGS] = e.forward ? VFLAG.FORWARD : 0;
  dv.setUint16(VALUE.MTU, e.mtu, true);
  dv.setUint32(VALUE.IFINDEX, e.ifindex, true);
  be32(out, VALUE.ADDR, e.addr);
  out[VALUE.PORT] = e.port >>> 8;
  out[VALUE.PORT + 1] = e.port & 0xff;
  out.set(e.dmac.subarray(0, 6), VALUE.DMAC);
  out.set(e.smac.subarray(0, 6), VALUE.SMAC);
  be32(out, VALUE.TUN_SADDR, e.tunSaddr);
  be32(out, VALUE.TUN_DADDR, e.tunDaddr);
  return out;
}

/** The counters the program keeps in a value. */
export interface FastCounters {
  packets: number;
  bytes: number;
  /** CLOCK_MONOTONIC ns of the last forwarded frame (0: none yet). */
  lastSeenNs: bigint;
}

/** Reads the counters of a value read back from the map. */
export function decodeCounters(v: Uint8Array): FastCounters {
  const dv = new DataView(v.buffer, v.byteOffset, VALUE.SIZE);
  return {
    packets: Number(dv.getBigUint64(VALUE.PACKETS, true)),
    bytes: Number(dv.getBigUint64(VALUE.BYTES, true)),
    lastSeenNs: dv.getBigUint64(VALUE.LAST_SEEN, true),
  };
}
