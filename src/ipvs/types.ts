// The kernel-shaped objects of ipvs: services, real servers (dests) and the scheduler contract.

/** Forwarding method, with the kernel's IP_VS_CONN_F_FWD_MASK values. */
export const enum Fwd {
  Masq = 0,
  Local = 1,
  Tunnel = 2,
  Route = 3,
  Bypass = 4,
  /** DPVS's IP_VS_CONN_F_FULLNAT: both addresses rewritten, CIP:cport → LIP:lport toward the real server. */
  FullNat = 5,
  /** DPVS's IP_VS_CONN_F_SNAT: a conn a real server opened, its source rewritten to a director address. */
  Snat = 6,
}

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export type Proto = typeof IPPROTO_TCP | typeof IPPROTO_UDP;

/** Service flags (IP_VS_SVC_F_*). sh/mh aliases: SCHED1 = fallback, SCHED2 = port. */
export const SVC_F = {
  PERSISTENT: 0x1,
  HASHED: 0x2,
  ONEPACKET: 0x4,
  SCHED1: 0x8,
  SCHED2: 0x10,
  SCHED3: 0x20,
} as const;

/** Dest flags (IP_VS_DEST_F_*). */
export const DEST_F = { AVAILABLE: 0x1, OVERLOAD: 0x2 } as const;

/** A real server of one service. Slow-path object; counters are updated as conns bind and unbind. */
export interface Dest {
  /** Stable small integer, unique among live and trashed dests; conns refer to dests by it. */
  readonly id: number;
  /** IPv4 address as an unsigned 32-bit integer (host order). */
  readonly addr: number;
  /** An IPv6 dest's address as four host-order words (then `addr` is unused); absent or null for IPv4. */
  readonly addr6?: Uint32Array | null;
  readonly port: number;
  fwd: Fwd;
  weight: number;
  /** Last non-zero weight (mh uses it while quiesced). */
  lastWeight: number;
  uThreshold: number;
  lThreshold: number;
  /** DEST_F bits. */
  flags: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  svc: Service;
}

/** The packet fields a scheduler may look at, filled in place by the data plane (never allocated per packet). */
export interface SchedPacket {
  proto: number;
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
  /**
   * An IPv6 packet's addresses as four host-order words each (views the data plane keeps, e.g. a
   * ParsedFrame6's); then saddr/daddr are unused. Absent or null for IPv4.
   */
  saddr6?: Uint32Array | null;
  daddr6?: Uint32Array | null;
}

/** A virtual service keyed by protocol + VIP + port (or fwmark). */
export interface Service {
  readonly proto: Proto;
  readonly addr: number;
  readonly port: number;
  fwmark: number;
  sched: Scheduler;
  /** Scheduler private state, owned by `sched`. */
  schedData: unknown;
  /** SVC_F bits. */
  flags: number;
  /** Persistence timeout in seconds (meaningful with SVC_F.PERSISTENT). */
  timeout: number;
  /** Persistence netmask as an unsigned 32-bit integer. */
  netmask: number;
  /** Real servers, newest first, as the kernel's list (new dests go to the head). */
  dests: Dest[];
}

/**
 * A scheduler plugin, as the kernel's struct ip_vs_scheduler. Registered once in a static registry;
 * bound to a service when the service is created or edited. `schedule` runs on the packet path for
 * new connections only: no allocation, no throwing, no logging.
 */
export interface Scheduler {
  readonly name: string;
  init?(svc: Service): void;
  done?(svc: Service): void;
  addDest?(svc: Service, dest: Dest): void;
  delDest?(svc: Service, dest: Dest): void;
  updDest?(svc: Service, dest: Dest): void;
  schedule(svc: Service, pkt: SchedPacket): Dest | null;
}
