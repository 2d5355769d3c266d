// The protocol plugin contract (struct ip_vs_protocol): state names, timeouts, new-conn rule, state transition.

import type { ConnTable } from '../conn.ts';
import type { Dest } from '../types.ts';

/** Packet direction (IP_VS_DIR_INPUT / IP_VS_DIR_OUTPUT). */
export const DIR_INPUT = 0;
export const DIR_OUTPUT = 1;

/** TCP header flag bits as on the wire (byte 13). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/**
 * A protocol's per-conn behaviour. `transition` runs on the packet path: it moves conn i to its next
 * state, keeps the dest's active/inactive counters and the conn's INACTIVE flag in step, and sets
 * the conn's timeout (the caller re-arms the timer). No allocation, no throwing.
 */
export interface Protocol {
  readonly proto: number;
  /** Upper-case name as the kernel prints it ("TCP", "UDP"). */
  readonly name: string;
  /** Timeout per state in seconds; mutable (`--set`). */
  readonly timeouts: Uint32Array;
  /** The default timeouts, per state. */
  readonly defaultTimeouts: readonly number[];
  /** State names as ipvsadm -L -c prints them. */
  readonly stateNames: readonly string[];
  /** conn_schedule's gate: may a packet with these TCP flags create a conn? */
  mayCreate(tcpFlags: number, sloppy: boolean): boolean;
  /** is_new_conn: is this a connection-opening packet (for conn_reuse_mode)? */
  isNewConn(tcpFlags: number): boolean;
  /** is_new_conn_expected: may an opening packet replace conn i (reuse mode bits)? */
  reuseExpected(t: ConnTable, i: number, reuseMode: number): boolean;
  transition(t: ConnTable, i: number, dir: number, tcpFlags: number, dest: Dest | undefined): void;
}

/** Mark the controlling template of conn i ASSURED (ip_vs_control_assure_ct). */
export function assureControl(t: ConnTable, i: number, templateFlag: number, assured: number): void {
  const ct = t.control[i]!;
  if (ct >= 0 && (t.flags[ct]! & templateFlag) !== 0) t.state[ct] = t.state[ct]! | assured;
}
