// The TCP state machine against the kernel's normal table, cell by cell, and its accounting.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONN_F, ConnTable } from '../../src/ipvs/conn.ts';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/ipvs/proto/proto.ts';
import { makeTcp, TCP_DEFAULT_TIMEOUTS, TCP_STATE_NAMES, tcpNextState, tcpStateIdx } from '../../src/ipvs/proto/tcp.ts';
import { makeUdp } from '../../src/ipvs/proto/udp.ts';
import type { Dest } from '../../src/ipvs/types.ts';

// Written out from ip_vs_proto_tcp.c's tcp_states[] by state name, independent of the source table.
const COLS = ['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK'];
const AB: Record<string, string> = { NO: 'NONE', ES: 'ESTABLISHED', SS: 'SYN_SENT', SR: 'SYN_RECV', FW: 'FIN_WAIT', TW: 'TIME_WAIT', CL: 'CLOSE', CW: 'CLOSE_WAIT', LA: 'LAST_ACK', LI: 'LISTEN', SA: 'SYNACK' };
const EXPECT: Record<string, Record<string, string>> = {
  INPUT: {
    syn: 'SR ES ES SR SR SR SR SR SR SR SR', fin: 'CL CW SS TW TW TW CL CW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW CL LI ES', rst: 'CL CL CL SR CL CL CL CL LA LI SR',
  },
  OUTPUT: {
    syn: 'SS ES SS SR SS SS SS SS SS LI SR', fin: 'TW FW SS TW FW TW CL TW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW LA ES ES', rst: 'CL CL SS CL CL TW CL CL CL CL CL',
  },
  INPUT_ONLY: {
    syn: 'SR ES ES SR SR SR SR SR SR SR SR', fin: 'CL FW SS TW FW TW CL CW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW CL LI ES', rst: 'CL CL CL SR CL CL CL CL LA LI CL',
  },
};
const EV: Record<string, number> = { syn: TCP_SYN, fin: TCP_FIN, ack: TCP_ACK, rst: TCP_RST };

function fakeDest(): Dest {
  return { id: 0, addr: 1, port: 80, fwd: 0, weight: 1, lastWeight: 1, uThreshold: 0, lThreshold: 0, flags: 1, activeConns: 0, inactConns: 1, persistConns: 0, svc: null as never };
}

test('every cell of the INPUT / OUTPUT / INPUT_ONLY tables', () => {
  const tcp = makeTcp();
  let cells = 0;
  for (const [dir, rows] of Object.entries(EXPECT)) {
    for (const [ev, row] of Object.entries(rows)) {
      const want = row.split(' ');
      for (let s = 0; s < COLS.length; s++) {
        // Drive through transition() with a conn whose flags select the table.
        const t = new ConnTable(4, { seed: 1 });
        const i = t.alloc(6, 1, 2, 3, 4, 5, 6, CONN_F.INACTIVE | (dir === 'INPUT_ONLY' ? CONN_F.NOOUTPUT : 0), 0);
        t.state[i] = s;
        const d = fakeDest();
        tcp.transition(t, i, dir === 'OUTPUT' ? DIR_OUTPUT : DIR_INPUT, EV[ev]!, d);
        assert.equal(TCP_STATE_NAMES[t.state[i]!], AB[want[s]!], `${dir} ${ev} from ${COLS[s]}`);
        assert.equal(t.timeout[i], TCP_DEFAULT_TIMEOUTS[t.state[i]!]);
        cells++;
      }
    }
  }
  assert.equal(cells, 3 * 4 * 11);
});

test('flag priority RST > SYN > FIN > ACK; no flag goes to CLOSE', () => {
  assert.equal(tcpStateIdx(TCP_RST | TCP_SYN | TCP_FIN | TCP_ACK), 3);
  assert.equal(tcpStateIdx(TCP_SYN | TCP_FIN | TCP_ACK), 0);
  assert.equal(tcpStateIdx(TCP_FIN | TCP_ACK), 1);
  assert.equal(tcpStateIdx(TCP_ACK), 2);
  assert.equal(tcpNextState(0, 0, 1), 6);
  assert.equal(tcpNextState(0, 0x08 /* PSH only */, 1), 6);
});

test('new-conn rule: SYN without RST; sloppy: any non-RST', () => {
  const tcp = makeTcp();
  assert.equal(tcp.mayCreate(TCP_SYN, false), true);
  assert.equal(tcp.mayCreate(TCP_SYN | TCP_RST, false), false);
  assert.equal(tcp.mayCreate(TCP_ACK, false), false);
  assert.equal(tcp.mayCreate(TCP_ACK, true), true);
  assert.equal(tcp.mayCreate(TCP_RST, true), false);
});

test('an output packet clears NOOUTPUT; active/inactive follow the state', () => {
  const tcp = makeTcp();
  const t = new ConnTable(4, { seed: 1 });
  const d = fakeDest();
  const i = t.alloc(6, 1, 2, 3, 4, 5, 6, CONN_F.INACTIVE | CONN_F.NOOUTPUT, 0);
  tcp.transition(t, i, DIR_INPUT, TCP_SYN, d);
  assert.equal(TCP_STATE_NAMES[t.state[i]!], 'SYN_RECV');
  assert.deepEqual([d.activeConns, d.inactConns], [1, 0]);
  tcp.transition(t, i, DIR_OUTPUT, TCP_SYN | TCP_ACK, d);
  assert.equal(t.flags[i]! & CONN_F.NOOUTPUT, 0);
  tcp.transition(t, i, DIR_INPUT, TCP_ACK, d);
  assert.equal(TCP_STATE_NAMES[t.state[i]!], 'ESTABLISHED');
  assert.deepEqual([d.activeConns, d.inactConns], [1, 0]);
  tcp.transition(t, i, DIR_INPUT, TCP_FIN | TCP_ACK, d);
  assert.equal(TCP_STATE_NAMES[t.state[i]!], 'CLOSE_WAIT');
  assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
  assert.equal(t.timeout[i], 60);
});

test('UDP: one state named UDP, 300 s, never active', () => {
  const udp = makeUdp();
  const t = new ConnTable(4, { seed: 1 });
  const d = fakeDest();
  const i = t.alloc(17, 1, 2, 3, 4, 5, 6, CONN_F.INACTIVE, 0);
  udp.transition(t, i, DIR_INPUT, 0, d);
  udp.transition(t, i, DIR_OUTPUT, 0, d);
  assert.equal(udp.stateNames[t.state[i]!], 'UDP');
  assert.equal(t.timeout[i], 300);
  assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
});
