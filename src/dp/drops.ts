// Why the director dropped a frame: one counter per reason, readable through the control socket.

/** Drop reasons beyond the parser's verdicts (which are counted separately, by verdict). */
export const enum Drop {
  /** IPv4 for an address that is not ours and not a NAT reply we track. */
  NOT_LOCAL = 0,
  /** TCP/UDP to a local address with no virtual service on that port. */
  NO_SERVICE = 1,
  /** A packet of no known connection that cannot start one (TCP without SYN, or with RST). */
  NO_CONN = 2,
  /** The scheduler found no real server (all quiesced, overloaded or none). */
  NO_DEST = 3,
  /** The connection table is full. */
  TABLE_FULL = 4,
  /** TTL ran out on the FORWARD path (time exceeded is sent back). */
  TTL_EXPIRED = 5,
  /** No route to the destination or next hop. */
  NO_ROUTE = 6,
  /** The next hop did not answer ARP, or its queue was full. */
  NEIGHBOUR = 7,
  /** The port refused the frame (queue full). */
  TX_FULL = 8,
  /** Non-first IPv4 fragment (not tracked: reassembly is left to the real server). */
  FRAGMENT = 9,
  /** IPv6 (not forwarded yet). */
  IPV6 = 10,
  /** Other ethertypes. */
  OTHER_ETHERTYPE = 11,
  /** Malformed frame (any bad-header verdict of the parser). */
  MALFORMED = 12,
  /** Too big for the TUN encapsulation with DF set (fragmentation-needed sent back). */
  TOO_BIG = 13,
  /** The connection's real server was removed (expire_nodest_conn off keeps dropping). */
  DEST_UNAVAILABLE = 14,
  /** A GSO frame the path cannot carry (e.g. would need segmenting and is not TCP). */
  GSO_UNSUPPORTED = 15,
  /** ICMP that is neither echo for us nor an error about a tracked connection. */
  ICMP_IGNORED = 16,
  /** Frames not addressed to our MAC (or broadcast) seen in promiscuous mode. */
  OTHER_HOST = 17,
  /** 802.1Q-tagged frames (own a kernel VLAN device instead). */
  VLAN = 18,
  /** IPv4 multicast for a group no local protocol (VRRP, sync) joined. */
  MULTICAST = 19,
  /** A new FullNAT conn found no free local port on any of its service's local addresses. */
  NO_LPORT = 20,
}

export const DROP_NAMES = [
  'not_local',
  'no_service',
  'no_conn',
  'no_dest',
  'table_full',
  'ttl_expired',
  'no_route',
  'neighbour',
  'tx_full',
  'fragment',
  'ipv6',
  'other_ethertype',
  'malformed',
  'too_big',
  'dest_unavailable',
  'gso_unsupported',
  'icmp_ignored',
  'other_host',
  'vlan',
  'multicast',
  'no_lport',
] as const;

export const DROP_COUNT = DROP_NAMES.length;
