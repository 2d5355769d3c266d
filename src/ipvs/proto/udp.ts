// UDP conns: one state ("UDP"), one timeout, always counted inactive (ip_vs_proto_udp.c).

import { CONN_F, CTPL_S_ASSURED, type ConnTable } from '../conn.ts';
import type { Dest } from '../types.ts';
import { assureControl, DIR_OUTPUT, type Protocol } from './proto.ts';

export const UDP_S_NORMAL = 0;
export const UDP_STATE_NAMES: readonly string[] = ['UDP'];
export const UDP_DEFAULT_TIMEOUTS: readonly number[] = [300];

/** A UDP protocol plugin (one per director). Any datagram may create a conn; a reply assures the template. */
export function makeUdp(): Protocol {
  return {
  proto: 17,
  name: 'UDP',
  timeouts: Uint32Array.from(UDP_DEFAULT_TIMEOUTS),
  defaultTimeouts: UDP_DEFAULT_TIMEOUTS,
  stateNames: UDP_STATE_NAMES,
  mayCreate() {
    return true;
  },
  isNewConn() {
    return false;
  },
  reuseExpected() {
    return false;
  },
  transition(t: ConnTable, i: number, dir: number, _flags: number, _dest: Dest | undefined) {
    t.timeout[i] = this.timeouts[UDP_S_NORMAL]!;
    if (dir === DIR_OUTPUT) assureControl(t, i, CONN_F.TEMPLATE, CTPL_S_ASSURED);
  },
};
}
