// IPv6 keys of the address-hashing schedulers (sh, dh, mh, lblc, lblcr): the kernel's fold, values worked by hand, and IPv6 packets through each scheduler.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { addr6Fold, setSchedClock } from '../../../src/ipvs/sched/common.ts';
import { dhBucket, dhBucket6 } from '../../../src/ipvs/sched/dh.ts';
import { mhPermutation6, mhSlot, mhSlot6, mhTable } from '../../../src/ipvs/sched/mh.ts';
import { LocalityTable } from '../../../src/ipvs/sched/locality.ts';
import { shHashKey, shHashKey6 } from '../../../src/ipvs/sched/sh.ts';
import { SVC_F, type SchedPacket } from '../../../src/ipvs/types.ts';
import { ip6w } from '../../packet/builder.ts';
import { addDest, build, makeDest, makeService, pick, type NamedDest } from './helpers.ts';

let now = 0;
setSchedClock(() => now);
afterEach(() => {
  now = 0;
});

const C1 = '2001:db8::2'; // words 20010db8 00000000 00000000 00000002
const C2 = '2001:db8:0:0:1::7'; // words 20010db8 00000000 00010000 00000007
const C3 = 'fe80::1';

test('the fold: XOR of the four words (ip_vs_sh/dh/mh/lblc/lblcr_hashkey under CONFIG_IP_VS_IPV6)', () => {
  assert.equal(addr6Fold(ip6w(C1), 0), 0x20010dba); // 0x20010db8 ^ 0 ^ 0 ^ 2
  assert.equal(addr6Fold(ip6w(C2), 0), 0x20000dbf); // 0x20010db8 ^ 0x00010000 ^ 7
  assert.equal(addr6Fold(ip6w(C3), 0), 0xfe800001);
  // An address and its word-rotated twin fold alike: the kernel accepts these collisions.
  assert.equal(addr6Fold(ip6w('1:2:3:4:5:6:7:8'), 0), addr6Fold(ip6w('5:6:7:8:1:2:3:4'), 0));
});

test('sh and dh: hash_32(fold [+ port]) by hand', () => {
  // hash_32(v, 8) = (v * 0x61c88647 mod 2^32) >> 24.
  // 0x20010dba * 0x61c88647 = 0x...a0ca2a96 -> 0xa0 = 160
  assert.equal(shHashKey6(ip6w(C1), 0, 0, 0), 160);
  assert.equal(dhBucket6(ip6w(C1), 0), 160);
  // 0x20000dbf * 0x61c88647 = 0x...036dc9f9 -> 0x03 = 3
  assert.equal(shHashKey6(ip6w(C2), 0, 0, 0), 3);
  assert.equal(dhBucket6(ip6w(C2), 0), 3);
  // sh-port: (0x20010dba + 40000) = 0x2001a9fa; * 0x61c88647 = 0x...44bf0056 -> 0x44 = 68
  assert.equal(shHashKey6(ip6w(C1), 0, 40000, 0), 68);
  // The offset of sh-fallback adds after the hash, masked to 8 bits.
  assert.equal(shHashKey6(ip6w(C1), 0, 0, 100), (160 + 100) & 255);
  assert.equal(shHashKey6(ip6w(C3), 0, 0, 0), 247);
  // The IPv4 functions are the same formula over the fold.
  assert.equal(shHashKey(0x20010dba, 0, 0), 160);
  assert.equal(dhBucket(0xfe800001), 247);
});

test('mh: hsiphash (SipHash-1-3, the kernel fixed keys) of the fold, values from an independent implementation', () => {
  // Worked with a separate SipHash-1-3 (checked against lib/test_siphash.c's hsiphash_1u32 vector):
  // hsiphash({2654435761, 2654435761}, fold + port) % 4093.
  assert.equal(mhSlot6(ip6w(C1), 0, 0), 1523);
  assert.equal(mhSlot6(ip6w(C1), 0, 40000), 2473);
  assert.equal(mhSlot6(ip6w(C2), 0, 0), 1581);
  assert.equal(mhSlot6(ip6w(C3), 0, 40000), 2401);
  assert.equal(mhSlot(0x20000dbf, 0), 1581);
  // ip_vs_mh_permutate for IPv6 dests: offset from hash1, skip from hash2 % 4092 + 1.
  assert.deepEqual(mhPermutation6(ip6w('2001:db8:2::11'), 0, 80), { offset: 1456, skip: 278 });
  assert.deepEqual(mhPermutation6(ip6w('2001:db8:2::12'), 0, 80), { offset: 2681, skip: 2770 });
});

const pkt6 = (src: string, dst = '2001:db8:1::100', sport = 40000): SchedPacket => ({
  proto: 6,
  saddr: 0,
  sport,
  daddr: 0,
  dport: 80,
  saddr6: ip6w(src),
  daddr6: ip6w(dst),
});

test('sh: an IPv6 client lands in the bucket of its fold, with and without sh-port', () => {
  // Two dests of weight 1: buckets alternate, in list order, from bucket 0: even -> A, odd -> B.
  for (const flags of [0, SVC_F.SCHED2]) {
    const { svc } = build('sh', [
      { name: 'A', weight: 1 },
      { name: 'B', weight: 1 },
    ], flags);
    for (const c of [C1, C2, C3]) {
      const b = shHashKey6(ip6w(c), 0, flags ? 40000 : 0, 0);
      assert.equal(pick(svc, pkt6(c)), b % 2 === 0 ? 'A' : 'B', `${c} flags ${flags}`);
    }
  }
});

test('dh: an IPv6 destination maps to bucket i -> dest i mod n', () => {
  const { svc } = build('dh', [
    { name: 'A', weight: 1 },
    { name: 'B', weight: 1 },
    { name: 'C', weight: 1 },
  ]);
  for (const d of [C1, C2, C3]) assert.equal(pick(svc, pkt6('2001:db8::9', d)), 'ABC'[dhBucket6(ip6w(d), 0) % 3]);
});

test('mh: IPv6 dests get the permutations of their folded addresses, IPv6 clients the slot of theirs', () => {
  const svc = makeService('mh');
  const mk = (name: string, a: string, i: number): NamedDest => makeDest(svc, { name, weight: 1, port: 80, addr6: ip6w(a) }, i);
  const a = mk('A', '2001:db8:2::11', 0);
  const b = mk('B', '2001:db8:2::12', 1);
  addDest(svc, b);
  addDest(svc, a);
  const table = mhTable(svc);
  // The table fill begins with each dest's first preferred slot (list order: A then B).
  assert.equal((table[1456] as NamedDest).name, 'A');
  assert.equal((table[2681] as NamedDest).name, 'B');
  for (const c of [C1, C2, C3]) assert.equal(pick(svc, pkt6(c)), (table[mhSlot6(ip6w(c), 0, 0)] as NamedDest).name);
});

test('lblc / lblcr: IPv6 destinations are cached by their full address, bucketed by the fold', () => {
  for (const sched of ['lblc', 'lblcr']) {
    const { svc, d } = build(sched, [
      { name: 'A', weight: 1 },
      { name: 'B', weight: 1 },
    ]);
    const X = '1:2:3:4:5:6:7:8';
    const Y = '5:6:7:8:1:2:3:4'; // same fold, different address
    assert.equal(pick(svc, pkt6(C1, X)), 'A');
    d.A!.activeConns = 1;
    assert.equal(pick(svc, pkt6(C1, X)), 'A', `${sched}: cached`);
    // Y shares X's bucket but not its entry: it is scheduled afresh by wlc (A has a conn: B).
    assert.equal(pick(svc, pkt6(C1, Y)), 'B', `${sched}: a colliding fold is another entry`);
    assert.equal(pick(svc, pkt6(C1, X)), 'A');
  }
});

test('LocalityTable: IPv6 entries survive growth and removal', () => {
  const freed: number[] = [];
  const t = new LocalityTable(0, (i) => freed.push(i), () => {});
  const addrs = Array.from({ length: 200 }, (_, i) => ip6w(`2001:db8::${(i + 1).toString(16)}`));
  const idx = addrs.map((a) => t.add6(a, 0, 0));
  addrs.forEach((a, i) => assert.equal(t.get6(a, 0), idx[i]));
  t.remove(idx[7]!);
  assert.equal(t.get6(addrs[7]!, 0), -1);
  assert.equal(t.get6(addrs[8]!, 0), idx[8]);
  assert.equal(t.entries, 199);
  assert.equal(t.get6(ip6w('2001:db8::ffff'), 0), -1);
});
