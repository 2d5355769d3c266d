// The backup's handling of hostile or odd entries: what it may touch, how long it keeps conns, how much of the table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendConnV4, writeMesgHeader, SR } from '../../src/ipvs/sync/msg.ts';
import { SyncBackup, SB } from '../../src/ipvs/sync/backup.ts';
import { Ipvs } from '../../src/ipvs/service.ts';
import { CONN_F, CTPL_S_ASSURED } from '../../src/ipvs/conn.ts';
import { inPacket, newTuple, V_FORWARD } from '../../src/ipvs/core.ts';
import { TCP_S } from '../../src/ipvs/proto/tcp.ts';
import { Fwd, IPPROTO_TCP, IPPROTO_UDP, SVC_F } from '../../src/ipvs/types.ts';
import { ip } from '../packet/builder.ts';

const VIP = ip('198.18.1.100');
const CIP = ip('198.18.0.2');
const RIP1 = ip('198.18.2.11');
const RIP2 = ip('198.18.2.12');
const SYN = 0x02;

/** A backup with TCP VIP:80 → RIP1/RIP2:8080 (NAT) and a persistent TCP VIP:443 → RIP1:443 (DR). */
function setup(capacity = 64) {
  const ipvs = new Ipvs({ connCapacity: capacity, statsSlots: 64, tickMs: 10 });
  ipvs.addService({ proto: IPPROTO_TCP, addr: VIP, port: 80, sched: 'rr' });
  for (const a of [RIP1, RIP2]) ipvs.addDest({ proto: IPPROTO_TCP, addr: VIP, port: 80 }, { addr: a, port: 8080, fwd: Fwd.Masq, weight: 1 });
  ipvs.addService({ proto: IPPROTO_TCP, addr: VIP, port: 443, sched: 'rr', flags: SVC_F.PERSISTENT, timeout: 300 });
  ipvs.addDest({ proto: IPPROTO_TCP, addr: VIP, port: 443 }, { addr: RIP1, port: 443, fwd: Fwd.Route, weight: 1 });
  ipvs.tick(1000);
  const bk = new SyncBackup(ipvs, 0);
  return { ipvs, t: ipvs.conns, bk };
}

interface Entry {
  proto?: number;
  flags?: number;
  state?: number;
  cport?: number;
  vport?: number;
  dport?: number;
  fwmark?: number;
  timeout?: number;
  caddr?: number;
  daddr?: number;
}

function message(entries: Entry[]): Uint8Array {
  const b = new Uint8Array(1472);
  writeMesgHeader(b, 0, 0);
  let size = 8;
  for (const e of entries) {
    size = appendConnV4(b, 0, e.proto ?? IPPROTO_TCP, e.flags ?? Fwd.Masq, e.state ?? TCP_S.ESTABLISHED, e.cport ?? 40000, e.vport ?? 80,
      e.dport ?? 8080, e.fwmark ?? 0, e.timeout ?? 900, e.caddr ?? CIP, VIP, e.daddr ?? RIP1, null);
  }
  return b.slice(0, size);
}

function send(bk: SyncBackup, entries: Entry[]): void {
  const m = message(entries);
  bk.receive(m, 0, m.length);
}

/** A conn this director schedules itself: a client SYN to VIP:80. */
function localConn(ipvs: Ipvs, cport = 40000): number {
  const p = newTuple();
  Object.assign(p, { proto: IPPROTO_TCP, saddr: CIP, sport: cport, daddr: VIP, dport: 80, tcpFlags: SYN, len: 60, fwmark: 0 });
  assert.equal(inPacket(ipvs, p), V_FORWARD);
  return p.conn;
}

function snapshot(ipvs: Ipvs, i: number) {
  const t = ipvs.conns;
  return { used: t.isUsed(i), daddr: t.daddr[i], dport: t.dport[i], state: t.state[i], timeout: t.timeout[i], inPkts: t.inPkts[i],
    flags: t.flags[i], expires: t.expires[i] };
}

test('a forged entry with a real key and a bogus real server deletes nothing and installs nothing', () => {
  const { ipvs, t, bk } = setup();
  const local = localConn(ipvs);
  const before = snapshot(ipvs, local);
  // Active (INACTIVE clear), another daddr: the kernel would expire the conn before finding no dest.
  send(bk, [{ daddr: ip('198.18.9.9') }]);
  assert.deepEqual(snapshot(ipvs, local), before);
  assert.equal(t.count, 1);
  assert.equal(bk.drops[SR.NO_DEST], 1);
  // The same against a synced conn: it stays as it was too.
  send(bk, [{ cport: 40001, daddr: RIP2 }]);
  const synced = t.lookupIn(IPPROTO_TCP, CIP, 40001, VIP, 80);
  assert.ok(synced >= 0);
  send(bk, [{ cport: 40001, daddr: ip('198.18.9.9') }]);
  assert.equal(t.lookupIn(IPPROTO_TCP, CIP, 40001, VIP, 80), synced);
  assert.equal(t.daddr[synced], RIP2);
  assert.equal(bk.drops[SR.NO_DEST], 2);
});

test('conns this director scheduled are never modified or replaced by sync; synced ones are', () => {
  const { ipvs, t, bk } = setup();
  const local = localConn(ipvs);
  const before = snapshot(ipvs, local);
  const d = ipvs.destById[t.dest[local]!]!;
  const counts = { a: d.activeConns, i: d.inactConns };
  // Same real server, other state and timeout: an update the kernel would apply.
  send(bk, [{ daddr: t.daddr[local], state: TCP_S.TIME_WAIT, timeout: 5, flags: Fwd.Masq | CONN_F.INACTIVE }]);
  // Another known real server, active: a replacement the kernel would make.
  const other = t.daddr[local] === RIP1 ? RIP2 : RIP1;
  send(bk, [{ daddr: other }]);
  assert.deepEqual(snapshot(ipvs, local), before);
  assert.deepEqual({ a: d.activeConns, i: d.inactConns }, counts);
  assert.equal(t.count, 1);
  assert.equal(bk.drops[SR.LOCAL], 2);
  // A synced conn is updated, then replaced when the master moves it.
  send(bk, [{ cport: 50000, daddr: RIP1 }]);
  send(bk, [{ cport: 50000, daddr: RIP1, state: TCP_S.FIN_WAIT, timeout: 60 }]);
  const s = t.lookupIn(IPPROTO_TCP, CIP, 50000, VIP, 80);
  assert.equal(t.state[s], TCP_S.FIN_WAIT);
  assert.equal(bk.counts[SB.CONNS_UPDATED], 1);
  send(bk, [{ cport: 50000, daddr: RIP2 }]);
  const s2 = t.lookupIn(IPPROTO_TCP, CIP, 50000, VIP, 80);
  assert.equal(t.daddr[s2], RIP2);
  assert.equal(t.count, 2);
});

test('replacing a synced conn is ip_vs_conn_expire_now, not a forced delete: an unassured template it hangs under stays', () => {
  const { ipvs, t, bk } = setup();
  send(bk, [{ flags: Fwd.Route | CONN_F.TEMPLATE, cport: 0, vport: 443, dport: 443, state: 0, timeout: 300 }]);
  const tpl = t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 443);
  assert.ok(tpl >= 0);
  assert.equal(t.state[tpl]! & CTPL_S_ASSURED, 0);
  send(bk, [{ vport: 443, dport: 443, flags: Fwd.Route }]);
  const cp = t.lookupIn(IPPROTO_TCP, CIP, 40000, VIP, 443);
  assert.ok(cp >= 0);
  // Hang it under the template (as a conn the director scheduled under it would be).
  t.control[cp] = tpl;
  t.nControl[tpl] = 1;
  // The master moved the client: the vport-443 service has one real server, so move it by a new one.
  ipvs.addDest({ proto: IPPROTO_TCP, addr: VIP, port: 443 }, { addr: RIP2, port: 443, fwd: Fwd.Route, weight: 1 });
  send(bk, [{ vport: 443, dport: 443, flags: Fwd.Route, daddr: RIP2 }]);
  assert.equal(t.daddr[t.lookupIn(IPPROTO_TCP, CIP, 40000, VIP, 443)], RIP2);
  assert.ok(t.isUsed(tpl), 'the template went with the replaced conn');
  assert.equal(t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 443), tpl);
  assert.equal(t.nControl[tpl], 0);
});

test('synced timeouts are cut to the local protocol timeout of their state, templates to the service persistence', () => {
  const { ipvs, t, bk } = setup();
  send(bk, [
    { cport: 1, state: TCP_S.ESTABLISHED, timeout: 2147483 },
    { cport: 2, state: TCP_S.TIME_WAIT, timeout: 86400 },
    { cport: 3, state: TCP_S.ESTABLISHED, timeout: 30 },
    { cport: 4, state: TCP_S.ESTABLISHED, timeout: 0 },
    { flags: Fwd.Route | CONN_F.TEMPLATE, cport: 0, vport: 443, dport: 443, state: 0, timeout: 2147483 },
  ]);
  const at = (cport: number) => t.lookupIn(IPPROTO_TCP, CIP, cport, VIP, 80);
  assert.equal(t.timeout[at(1)], ipvs.tcp.timeouts[TCP_S.ESTABLISHED]);
  assert.equal(t.timeout[at(2)], ipvs.tcp.timeouts[TCP_S.TIME_WAIT]);
  assert.equal(t.timeout[at(3)], 30);
  assert.equal(t.timeout[at(4)], ipvs.tcp.timeouts[TCP_S.ESTABLISHED]);
  assert.ok(t.remainingMs(at(1)) <= ipvs.tcp.timeouts[TCP_S.ESTABLISHED]! * 1000);
  assert.equal(t.timeout[t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 443)], 300);
  // --set on the backup is what counts.
  ipvs.setTimeouts({ tcp: 120, tcpfin: 0, udp: 0 });
  send(bk, [{ cport: 1, state: TCP_S.ESTABLISHED, timeout: 900 }]);
  assert.equal(t.timeout[at(1)], 120);
});

test('synced conns take at most sync_conn_share of the table; local conns still find room, and early drop serves sync too', () => {
  const { ipvs, t, bk } = setup(64);
  assert.equal(ipvs.syncConnShare, 50);
  const entries: Entry[] = [];
  for (let i = 0; i < 40; i++) entries.push({ cport: 1000 + i, daddr: i % 2 ? RIP1 : RIP2 });
  send(bk, entries);
  assert.equal(t.syncCount, 32);
  assert.equal(bk.drops[SR.SHARE_FULL], 8);
  // Updates of conns already synced are still taken.
  send(bk, [{ cport: 1000, daddr: RIP2, state: TCP_S.FIN_WAIT, timeout: 10 }]);
  assert.equal(t.state[t.lookupIn(IPPROTO_TCP, CIP, 1000, VIP, 80)], TCP_S.FIN_WAIT);
  // Synced conns leave the share when they expire.
  ipvs.tick(1000 + 11_000);
  assert.equal(t.syncCount, 31);
  // The other half is for local traffic.
  for (let i = 0; i < 33; i++) localConn(ipvs, 2000 + i);
  assert.equal(t.count, 64);
  // Table full of local handshakes (SYN_RECV): a synced entry early-drops one of them, as a local conn would.
  send(bk, [{ cport: 3000 }]);
  assert.equal(bk.drops[SR.TABLE_FULL], 0);
  assert.ok(t.lookupIn(IPPROTO_TCP, CIP, 3000, VIP, 80) >= 0);
  assert.equal(t.earlyDrop, 1);
  assert.equal(t.syncCount, 32);
  // A smaller share, as sync_conn_share sets it.
  const s = setup(64);
  s.ipvs.syncConnShare = 10;
  send(s.bk, entries);
  assert.equal(s.t.syncCount, 6);
});

test('an entry with a fwmark is refused and counted (tsvs has no fwmark services), never bound by address', () => {
  const { t, bk } = setup();
  send(bk, [{ fwmark: 7 }, { fwmark: 7, flags: Fwd.Route | CONN_F.TEMPLATE, cport: 0, vport: 443, dport: 443, state: 0 }]);
  assert.equal(t.count, 0);
  assert.equal(bk.drops[SR.FWMARK], 2);
});

test('a template with a client port is refused: it could never match, and each refresh would add one', () => {
  const { t, bk } = setup();
  const tpl: Entry = { flags: Fwd.Route | CONN_F.TEMPLATE, cport: 1234, vport: 443, dport: 443, state: 0, timeout: 300 };
  send(bk, [tpl]);
  send(bk, [tpl]);
  assert.equal(t.count, 0);
  assert.equal(bk.drops[SR.TEMPLATE], 2);
  // The ordinary template: refreshed in place.
  send(bk, [{ ...tpl, cport: 0 }]);
  send(bk, [{ ...tpl, cport: 0 }]);
  assert.equal(t.count, 1);
  assert.equal(bk.counts[SB.CONNS_UPDATED], 1);
});

test('fuzz: after random runs of entries, every dest counts exactly the conns bound to it', () => {
  const arb = fc.array(fc.array(fc.record({
    proto: fc.constantFrom(IPPROTO_TCP, IPPROTO_UDP),
    flags: fc.integer({ min: 0, max: 0x3fff }),
    state: fc.integer({ min: 0, max: 12 }),
    cport: fc.constantFrom(0, 40000, 40001, 40002),
    vport: fc.constantFrom(80, 443),
    dport: fc.constantFrom(8080, 443, 0),
    timeout: fc.constantFrom(0, 1, 60, 900, 2147483),
    daddr: fc.constantFrom(RIP1, RIP2, ip('198.18.9.9')),
  }), { maxLength: 12 }), { maxLength: 8 });
  fc.assert(fc.property(arb, fc.boolean(), (runs, withLocal) => {
    const { ipvs, t, bk } = setup(16);
    if (withLocal) localConn(ipvs, 40001);
    let now = 1000;
    for (const r of runs) {
      send(bk, r);
      ipvs.tick((now += 500));
    }
    const listed = new Map<number, { a: number; i: number; p: number }>();
    for (let i = t.next(0); i >= 0; i = t.next(i + 1)) {
      const e = listed.get(t.dest[i]!) ?? { a: 0, i: 0, p: 0 };
      const f = t.flags[i]!;
      if (f & CONN_F.TEMPLATE) e.p++;
      else if (f & CONN_F.INACTIVE) e.i++;
      else e.a++;
      listed.set(t.dest[i]!, e);
    }
    let sync = 0;
    for (let i = t.next(0); i >= 0; i = t.next(i + 1)) if (t.flags[i]! & CONN_F.SYNC) sync++;
    assert.equal(t.syncCount, sync);
    for (const d of ipvs.destById) {
      if (d === undefined) continue;
      const e = listed.get(d.id) ?? { a: 0, i: 0, p: 0 };
      assert.deepEqual({ a: d.activeConns, i: d.inactConns, p: d.persistConns }, e, `dest ${d.addr}:${d.port}`);
    }
  }), { numRuns: 400 });
});
