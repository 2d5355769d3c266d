// TCP conn states, timeouts and the kernel's normal state table (ip_vs_proto_tcp.c).

import { CONN_F, CTPL_S_ASSURED, type ConnTable } from '../conn.ts';
import type { Dest } from '../types.ts';
import { assureControl, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Protocol } from './proto.ts';

/** TCP states (IP_VS_TCP_S_*). */
export const TCP_S = {
  NONE: 0,
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT: 4,
  TIME_WAIT: 5,
  CLOSE: 6,
  CLOSE_WAIT: 7,
  LAST_ACK: 8,
  LISTEN: 9,
  SYNACK: 10,
} as const;

export const TCP_STATE_NAMES: readonly string[] = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK',
  'LISTEN', 'SYNACK',
];

/** Default timeouts in seconds, by state. */
export const TCP_DEFAULT_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

const ACTIVE: readonly boolean[] = [false, true, true, true, false, false, false, false, false, false, true];

/** Whether a TCP state counts as an active conn (tcp_state_active). */
export function tcpStateActive(s: number): boolean {
  return ACTIVE[s] === true;
}

/** Table offsets by direction: INPUT, OUTPUT, INPUT_ONLY (used while NOOUTPUT is set). */
export const TCP_DIR_INPUT = 0;
export const TCP_DIR_OUTPUT = 4;
export const TCP_DIR_INPUT_ONLY = 8;

const { NONE: NO, ESTABLISHED: ES, SYN_SENT: SS, SYN_RECV: SR, FIN_WAIT: FW, TIME_WAIT: TW, CLOSE: CL,
  CLOSE_WAIT: CW, LAST_ACK: LA, LISTEN: LI, SYNACK: SA } = TCP_S;
void NO;
void SA;

/** Rows: (direction offset + event), event syn 0, fin 1, ack 2, rst 3; columns: current state. */
const ROWS: readonly (readonly number[])[] = [
  // INPUT
  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
  // OUTPUT
  [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
  // INPUT_ONLY
  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];
const NSTATES = 11;
const TABLE = new Uint8Array(12 * NSTATES);
ROWS.forEach((row, r) => row.forEach((s, c) => (TABLE[r * NSTATES + c] = s)));

/** The event index of a segment: RST > SYN > FIN > ACK, -1 for none (tcp_state_idx). */
export function tcpStateIdx(flags: number): number {
  if (flags & TCP_RST) return 3;
  if (flags & TCP_SYN) return 0;
  if (flags & TCP_FIN) return 1;
  if (flags & TCP_ACK) return 2;
  return -1;
}

/** Next state from the normal table; a segment with none of the four flags goes to CLOSE. */
export function tcpNextState(dirOff: number, flags: number, state: number): number {
  const idx = tcpStateIdx(flags);
  if (idx < 0 || state >= NSTATES) return CL;
  return TABLE[(dirOff + idx) * NSTATES + state]!;
}

const F_NOOUTPUT = CONN_F.NOOUTPUT;
const F_INACTIVE = CONN_F.INACTIVE;

/** The TCP protocol plugin. Each director gets its own (its `timeouts` is the live table `--set` edits). */
export function makeTcp(): Protocol {
  return {
  proto: 6,
  name: 'TCP',
  timeouts: Uint32Array.from(TCP_DEFAULT_TIMEOUTS),
  defaultTimeouts: TCP_DEFAULT_TIMEOUTS,
  stateNames: TCP_STATE_NAMES,
  mayCreate(flags, sloppy) {
    return (flags & TCP_RST) === 0 && (sloppy || (flags & TCP_SYN) !== 0);
  },
  isNewConn(flags) {
    return (flags & TCP_SYN) !== 0;
  },
  reuseExpected(t, i, mode) {
    if (t.control[i]! >= 0) return false;
    const s = t.state[i]!;
    return s === TW || s === CL || ((mode & 2) !== 0 && s === FW && (t.flags[i]! & F_NOOUTPUT) !== 0);
  },
  transition(t: ConnTable, i: number, dir: number, flags: number, dest: Dest | undefined) {
    let off = dir === DIR_OUTPUT ? TCP_DIR_OUTPUT : TCP_DIR_INPUT;
    const f = t.flags[i]!;
    if (f & F_NOOUTPUT) {
      if (off === TCP_DIR_OUTPUT) t.flags[i] = f & ~F_NOOUTPUT;
      else off = TCP_DIR_INPUT_ONLY;
    }
    const cur = t.state[i]!;
    const next = tcpNextState(off, flags, cur);
    if (next !== cur) {
      if (dest !== undefined) {
        const fl = t.flags[i]!;
        const active = ACTIVE[next] === true;
        if ((fl & F_INACTIVE) === 0 && !active) {
          dest.activeConns--;
          dest.inactConns++;
          t.flags[i] = fl | F_INACTIVE;
        } else if ((fl & F_INACTIVE) !== 0 && active) {
          dest.activeConns++;
          dest.inactConns--;
          t.flags[i] = fl & ~F_INACTIVE;
        }
      }
      if (next === ES) assureControl(t, i, CONN_F.TEMPLATE, CTPL_S_ASSURED);
    }
    t.state[i] = next;
    t.timeout[i] = this.timeouts[next]!;
  },
};
}
