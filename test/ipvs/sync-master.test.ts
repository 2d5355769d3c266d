// The master's sync decisions (ip_vs_sync_conn_needed): threshold/period, TCP states, templates, refresh, persist mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnTable, CONN_F } from '../../src/ipvs/conn.ts';
import { SyncMaster, SYNC_SYSCTL_DEFAULTS, SM, type SyncSysctls } from '../../src/ipvs/sync/master.ts';
import { TCP_S } from '../../src/ipvs/proto/tcp.ts';

function setup(sys: Partial<SyncSysctls> = {}) {
  const t = new ConnTable(64, { tickMs: 10 });
  t.tick(1000);
  const m = new SyncMaster(t, 0, 1472, { ...SYNC_SYSCTL_DEFAULTS, ...sys });
  const sent: Uint8Array[] = [];
  const flush = (now: number) => {
    t.tick(now);
    m.tick(now, (b) => (sent.push(b.slice()), true));
  };
  const conn = (proto: number, state: number, flags = 0, timeout = 900) => {
    const i = t.alloc(proto, 1, 1000, 2, 80, 3, 80, flags, 0);
    t.state[i] = state;
    t.timeout[i] = timeout;
    return i;
  };
  /** Feeds packets `from`..`to` (the in_pkts values) of conn i; returns the counts at which it was synced. */
  const feed = (i: number, from: number, to: number) => {
    const at: number[] = [];
    for (let p = from; p <= to; p++) {
      const before = m.counts[SM.CONNS]!;
      t.inPkts[i] = p;
      m.conn(i, p);
      if (m.counts[SM.CONNS]! > before) at.push(p);
    }
    return at;
  };
  return { t, m, sent, flush, conn, feed };
}

test('UDP and established TCP: synced when in_pkts % sync_period == sync_threshold (3, 53, 103)', () => {
  const { conn, feed } = setup();
  assert.deepEqual(feed(conn(17, 0), 1, 110), [3, 53, 103]);
  assert.deepEqual(feed(conn(6, TCP_S.ESTABLISHED), 1, 110), [3, 53, 103]);
});

test('TCP: SYN_RECV never; a change to FIN_WAIT, CLOSE_WAIT, TIME_WAIT or CLOSE at once; back to ESTABLISHED waits for the count', () => {
  const { t, conn, feed } = setup();
  const i = conn(6, TCP_S.SYN_RECV);
  assert.deepEqual(feed(i, 1, 2), []);
  t.state[i] = TCP_S.ESTABLISHED;
  assert.deepEqual(feed(i, 3, 10), [3]);
  t.state[i] = TCP_S.FIN_WAIT;
  assert.deepEqual(feed(i, 11, 12), [11], 'the state change is sent at once, once');
  t.state[i] = TCP_S.TIME_WAIT;
  assert.deepEqual(feed(i, 13, 14), [13]);
  t.state[i] = TCP_S.LAST_ACK;
  assert.deepEqual(feed(i, 15, 60), [], 'LAST_ACK is not a synced state');
});

test('sync_period 0: once, at sync_threshold', () => {
  const { conn, feed } = setup({ period: 0 });
  assert.deepEqual(feed(conn(17, 0), 1, 200), [3]);
});

test('templates skip the packet count: every packet of a controlled conn syncs its template (the kernel does so too)', () => {
  const { t, m, conn } = setup();
  const tpl = conn(6, 0, CONN_F.TEMPLATE, 300);
  const c = conn(6, TCP_S.SYN_RECV);
  t.control[c] = tpl;
  t.nControl[tpl] = 1;
  m.conn(c, 1);
  m.conn(c, 2);
  assert.equal(m.counts[SM.CONNS], 2, 'the template twice, the conn (SYN_RECV) never');
  // core.ts's inPacket counts the template's packets (early drop reads them); the master only reads.
  assert.equal(t.inPkts[tpl], 0);
});

test('sync_persist_mode: conns under a template are left out, the template still goes', () => {
  const { t, m, conn } = setup({ persistMode: 1 });
  const tpl = conn(6, 0, CONN_F.TEMPLATE, 300);
  const c = conn(17, 0);
  t.control[c] = tpl;
  for (let p = 1; p <= 3; p++) m.conn(c, p);
  assert.equal(m.counts[SM.CONNS], 3, 'only the template, on each packet');
});

test('sync_refresh_period: a conn is not sent again within the refresh period unless its state changed', () => {
  const { t, conn, feed } = setup({ refreshPeriod: 60, period: 50 });
  const i = conn(17, 0, 0, 300);
  assert.deepEqual(feed(i, 1, 60), [3], 'packet 53 comes within 60 s of the first sync: held back');
  t.tick(1000 + 61_000);
  assert.deepEqual(feed(i, 100, 103), [103]);
});

test('one-packet conns are never synced', () => {
  const { conn, feed } = setup();
  assert.deepEqual(feed(conn(17, 0, CONN_F.ONE_PACKET), 1, 60), []);
});

test('batching: entries share a message until sync_maxlen; a full one goes within 20 ms, the last after 2 s', () => {
  const { t, m, sent, flush, conn } = setup();
  for (let k = 0; k < 45; k++) {
    const i = conn(17, 0);
    t.inPkts[i] = 3;
    m.conn(i, 3);
  }
  // (1472 - 8) / 36 = 40 entries fill a message.
  flush(1010);
  assert.equal(sent.length, 0);
  flush(1025);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.length, 8 + 40 * 36);
  assert.equal(sent[0]![4], 40);
  flush(2999);
  assert.equal(sent.length, 1);
  flush(3000);
  assert.equal(sent.length, 2);
  assert.equal(sent[1]![4], 5);
  assert.equal(m.pending(), 0);
});

test('folded (client packets the kernel fast path carried, a fold at a time): synced where feeding them one by one would have been', async () => {
  const { Ipvs } = await import('../../src/ipvs/service.ts');
  const { foldInPkts } = await import('../../src/ipvs/core.ts');
  for (const [sys, chunks, want] of [
    [{}, [2, 3, 40, 52, 53, 54, 110], 3],
    [{}, [2, 110], 1],
    [{ period: 0 }, [1, 2, 5, 200], 1],
    [{ period: 0 }, [1, 2], 0],
  ] as [Partial<SyncSysctls>, number[], number][]) {
    const ipvs = new Ipvs({ connCapacity: 64, statsSlots: 16, tickMs: 10 });
    const t = ipvs.conns;
    t.tick(1000);
    const m = new SyncMaster(t, 0, 1472, { ...SYNC_SYSCTL_DEFAULTS, ...sys });
    ipvs.sync = m;
    const i = t.alloc(6, 1, 1000, 2, 80, 3, 80, 0, 0);
    t.state[i] = TCP_S.ESTABLISHED;
    t.timeout[i] = 900;
    t.inPkts[i] = chunks[0]!;
    for (let k = 1; k < chunks.length; k++) foldInPkts(ipvs, i, chunks[k]! - chunks[k - 1]!);
    assert.equal(t.inPkts[i], chunks[chunks.length - 1]!);
    assert.equal(m.counts[SM.CONNS], want, `${JSON.stringify(sys)} ${chunks.join('→')}`);
  }
  // A conn under a template: the template counts the folded packets too (early drop reads them).
  const ipvs = new Ipvs({ connCapacity: 64, statsSlots: 16, tickMs: 10 });
  const t = ipvs.conns;
  const i = t.alloc(17, 1, 1000, 2, 53, 3, 53, 0, 0);
  const tpl = t.alloc(17, 1, 0, 2, 53, 3, 53, CONN_F.TEMPLATE, 0);
  t.control[i] = tpl;
  t.nControl[tpl] = 1;
  foldInPkts(ipvs, i, 5);
  foldInPkts(ipvs, i, 2);
  assert.deepEqual([t.inPkts[i], t.inPkts[tpl]], [7, 7]);
});
