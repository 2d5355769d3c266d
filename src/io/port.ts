// The one batch interface every packet port implements (AF_PACKET, TAP, macvtap, AF_XDP, memory).

/**
 * Every frame a port hands over, and every frame given to it, starts with a 10-byte virtio_net_hdr
 * followed by the Ethernet frame. Ports that have no such header from the kernel present zeros
 * (flags 0, gso_type NONE) on receive and, on transmit, must complete any partial checksum and
 * segment any GSO frame themselves, so the data plane handles one layout only.
 */
export const VNET_HDR_LEN = 10;

/** virtio_net_hdr field offsets and values (include/uapi/linux/virtio_net.h). */
export const VNET = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2, // u16 little-endian
  GSO_SIZE: 4, // u16 little-endian
  CSUM_START: 6, // u16 little-endian, from the start of the Ethernet frame
  CSUM_OFFSET: 8, // u16 little-endian, from csum_start
  F_NEEDS_CSUM: 1,
  F_DATA_VALID: 2,
  GSO_NONE: 0,
  GSO_TCPV4: 1,
  GSO_UDP: 3,
  GSO_TCPV6: 4,
  GSO_UDP_L4: 5,
  GSO_ECN: 0x80,
} as const;

export type PortKind = 'afpacket' | 'tap' | 'macvtap' | 'xdp' | 'memory';

/** Counters a port keeps; read on the slow path. */
export interface PortStats {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames the kernel dropped before we read them (PACKET_STATISTICS tp_drops, queue overflow). */
  rxDropped: number;
  /** Frames a txBurst could not send (queue full, EAGAIN after retry, too large). */
  txErrors: number;
}

/**
 * A packet port. rxBurst/txBurst never allocate and never throw on the data path: errors become
 * counters. Frame i of a burst lives at `offsets[i]` in `buf` with length `lengths[i]` bytes,
 * virtio_net_hdr included.
 */
export interface Port {
  readonly kind: PortKind;
  /** Interface the port owns (or a name for memory ports). */
  readonly ifname: string;
  /** The interface's MAC address, 6 bytes. */
  readonly mac: Uint8Array;
  /** The interface's MTU (L3 bytes). */
  readonly mtu: number;
  /** The largest frame (header included) this port can deliver: size receive slots to at least this. */
  readonly maxFrame: number;
  /**
   * Copies up to `max` received frames into `buf`. The caller sets `offsets[i]` (slot starts, each
   * slot at least `maxFrame` bytes) before the call; the port fills `lengths[i]`. Returns the count.
   */
  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number;
  /** Sends `count` frames; returns how many were accepted. Flushes once per call. */
  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  /** File descriptor to poll for readability, or -1 for ports that are not fd-backed (memory). */
  readonly fd: number;
  /** Blocks up to `timeoutMs` until a frame can be read; true when one can. */
  wait(timeoutMs: number): boolean;
  stats(): PortStats;
  /**
   * Joins a link-layer multicast address on the device (dev_mc_add), so its receive filter passes
   * frames sent to it (an IPv4 group's 01:00:5e:xx:xx:xx). Joins are counted: each needs its mcDel.
   * Slow path; throws IoError when the device refuses.
   */
  mcAdd(mac: Uint8Array): void;
  /** Leaves one join of `mac` (dev_mc_del). Never throws; closing the port leaves what is left. */
  mcDel(mac: Uint8Array): void;
  close(): void;
}

/** aa:bb:cc:dd:ee:ff, for messages. */
export function macString(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
