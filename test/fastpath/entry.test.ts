// The entry the fast path installs for a conn direction, from the director's state, equals what the TS path did to a frame of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { LAN_MAC, NAT_MAC, ROUTER_MAC, RS_MAC, setup, bytesOf, eth, entryFromTs } from './harness.ts';
import { fastEntryFor, newFastEntry } from '../../src/fastpath/entry.ts';
import { METHOD, type Method } from '../../src/fastpath/layout.ts';
import { CONN_F } from '../../src/ipvs/conn.ts';
import { Fwd } from '../../src/ipvs/types.ts';

const IFINDEX = 7;
const ifindexOf = () => IFINDEX;
const plain = (e: object) => JSON.parse(JSON.stringify(e, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));

for (const [method, proto] of [['nat', 'tcp'], ['nat', 'udp'], ['dr', 'tcp'], ['tun', 'udp'], ['tun', 'tcp']] as const) {
  test(`${method} ${proto}: fastEntryFor matches what the TS path wrote, both directions`, () => {
    const { lan, nat, ts, dp } = setup(method);
    const vport = proto === 'tcp' ? 80 : 53;
    const l4 = (b: PacketBuilder, sport: number, dport: number, flags: number) => (proto === 'tcp' ? b.tcp({ sport, dport, flags }) : b.udp({ sport, dport }));
    ts(lan, bytesOf(l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }), 40000, vport, 0x02)));
    const inF = bytesOf(l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }), 40000, vport, 0x10).payload([1, 2]));
    const o = ts(lan, inF);
    const sent = [...o.lan, ...o.nat];
    assert.equal(sent.length, 1);
    const ct = dp.ipvs.conns;
    const c = ct.lookupIn(proto === 'tcp' ? 6 : 17, ip('198.18.0.2'), 40000, ip('198.18.1.100'), vport);
    assert.ok(c >= 0);
    const m: Method = method === 'nat' ? METHOD.NAT_IN : method === 'dr' ? METHOD.DR : METHOD.TUN;
    const got = fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry());
    assert.ok(got);
    assert.deepEqual(plain(got), plain(entryFromTs(m, eth(inF), eth(sent[0]!), 1500, IFINDEX)));
    if (method !== 'nat') {
      assert.equal(fastEntryFor(dp.director, ct, c, 'out', ifindexOf, newFastEntry()), null, 'no reply direction through the director');
      return;
    }
    const rport = proto === 'tcp' ? 8080 : 5353;
    const back = bytesOf(l4(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2' }), rport, 40000, 0x10));
    const b = ts(nat, back).lan;
    assert.equal(b.length, 1);
    const gotOut = fastEntryFor(dp.director, ct, c, 'out', ifindexOf, newFastEntry());
    assert.ok(gotOut);
    assert.deepEqual(plain(gotOut), plain(entryFromTs(METHOD.NAT_OUT, eth(back), eth(b[0]!), 1500, IFINDEX)));
  });
}

test('no entry while the next hop is not usable on its port, nor for a method the program does not execute', () => {
  const { lan, ts, dp } = setup('nat');
  ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 })));
  const ct = dp.ipvs.conns;
  const c = ct.lookupIn(6, ip('198.18.0.2'), 40000, ip('198.18.1.100'), 80);
  assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()));
  // The real server's neighbour entry moves to another port (as if re-learned there): not usable.
  dp.director.neigh.learn(ip('198.18.2.11'), 0, mac(RS_MAC), 0, 0, true);
  assert.equal(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()), null);
  dp.director.neigh.learn(ip('198.18.2.11'), 1, mac(RS_MAC), 0, 0, true);
  assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()));
  // A method the program does not execute (a Local conn: the director has no stack to give it to).
  ct.flags[c] = (ct.flags[c]! & ~CONN_F.FWD_MASK) | Fwd.Local;
  assert.equal(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()), null);
});

test('no entry toward the real server once the VIP is not the director\'s (a VRRP BACKUP released it): the TS path drops such packets too', () => {
  const { lan, ts, dp } = setup('dr');
  ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 })));
  const ct = dp.ipvs.conns;
  const c = ct.lookupIn(6, ip('198.18.0.2'), 40000, ip('198.18.1.100'), 80);
  assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()));
  assert.ok(dp.director.delAddress(ip('198.18.1.100')));
  assert.equal(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()), null);
  const o = ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 })));
  assert.equal(o.lan.length + o.nat.length, 0, 'the TS path forwards nothing to a VIP it does not own');
});

test('the next hop as the TS path uses it: a neighbour past its reachable time is still used (Stale) and re-probed, also when only the fast path sends to it', () => {
  const arpsFor = (frames: Uint8Array[], target: string) =>
    frames.map(eth).filter((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 1 && [...f.subarray(38, 42)].join('.') === target).length;
  // Only the fast path sends to the real server: past the reachable time (30 s) nothing else looks it up.
  {
    const { lan, nat, ts, dp } = setup('nat');
    ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 })));
    const ct = dp.ipvs.conns;
    const c = ct.lookupIn(6, ip('198.18.0.2'), 40000, ip('198.18.1.100'), 80);
    dp.director.runOnce(31_000);
    lan.drain();
    nat.drain();
    assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()), 'still usable while re-probed');
    dp.director.flush();
    assert.equal(arpsFor(nat.drain(), '198.18.2.11'), 1, 'one ARP probe for the real server (the fast path is a user of the neighbour)');
    assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()));
    dp.director.flush();
    assert.equal(arpsFor(nat.drain(), '198.18.2.11'), 0, 'not again within the retransmit interval');
  }
  // The TS path made it Stale (another packet to it after 30 s): the entry stays, as the TS path keeps sending.
  {
    const { lan, nat, ts, dp } = setup('nat');
    ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 })));
    const ct = dp.ipvs.conns;
    const c = ct.lookupIn(6, ip('198.18.0.2'), 40000, ip('198.18.1.100'), 80);
    // 31 s later (ts() keeps its own clock, so the pass is run here).
    lan.inject(bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 })));
    dp.director.runOnce(31_000);
    const sent = nat.drain();
    assert.equal(sent.filter((f) => eth(f)[13] === 0x00).length, 1, 'the TS path sent it to the Stale neighbour');
    assert.equal(arpsFor(sent, '198.18.2.11'), 1, 'and re-probed it');
    assert.ok(fastEntryFor(dp.director, ct, c, 'in', ifindexOf, newFastEntry()), 'so does the fast path');
  }
});
