// Golden sync messages (layout from ip_vs_sync.c, written out by hand) and fuzzing of the parser and backup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendConnV4, checkMessage, forEachConn, writeMesgHeader, SR, SyncConn } from '../../src/ipvs/sync/msg.ts';
import { SyncBackup } from '../../src/ipvs/sync/backup.ts';
import { Ipvs } from '../../src/ipvs/service.ts';
import { Fwd, IPPROTO_TCP, IPPROTO_UDP } from '../../src/ipvs/types.ts';
import { ip } from '../packet/builder.ts';

/**
 * struct ip_vs_sync_mesg (8 bytes) then one struct ip_vs_sync_v4 (36 bytes): a NAT TCP conn
 * 198.18.0.2:40000 → 198.18.1.100:80 → 198.18.2.11:8080, ESTABLISHED, timeout 900 s.
 */
const GOLDEN_NAT = Uint8Array.from([
  // ip_vs_sync_mesg: reserved 0 (v0 receivers drop it), syncid 7, size 44 (be16)
  0x00, 0x07, 0x00, 0x2c,
  // nr_conns 1, version 1 (SYNC_PROTO_VER), spare 0
  0x01, 0x01, 0x00, 0x00,
  // ip_vs_sync_v4: type 0 (IPv4), protocol 6, ver_size = (0 << 12) | 36
  0x00, 0x06, 0x00, 0x24,
  // flags (be32): IP_VS_CONN_F_MASQ, active (no INACTIVE), HASHED masked off
  0x00, 0x00, 0x00, 0x00,
  // state 1 (IP_VS_TCP_S_ESTABLISHED), cport 40000
  0x00, 0x01, 0x9c, 0x40,
  // vport 80, dport 8080
  0x00, 0x50, 0x1f, 0x90,
  // fwmark 0
  0x00, 0x00, 0x00, 0x00,
  // timeout 900 s (be32)
  0x00, 0x00, 0x03, 0x84,
  // caddr 198.18.0.2, vaddr 198.18.1.100, daddr 198.18.2.11
  0xc6, 0x12, 0x00, 0x02,
  0xc6, 0x12, 0x01, 0x64,
  0xc6, 0x12, 0x02, 0x0b,
]);

/**
 * Two entries: a persistence template (TCP, cport 0, flags TEMPLATE|DROUTE|NOOUTPUT, state 1
 * ASSURED, timeout 300) and a DR UDP conn with SEQ_DATA (which shows the option's 2-byte header and
 * the 2 bytes of padding before the next entry). Sizes: 8 + 36 + 62 + pad 2 ... laid out as the
 * kernel does: the first entry here is the one with the option.
 */
const GOLDEN_TWO = Uint8Array.from([
  // header: syncid 0, size 8 + 62 + 2 (pad) + 36 = 108 = 0x6c, 2 conns, version 1
  0x00, 0x00, 0x00, 0x6c, 0x02, 0x01, 0x00, 0x00,
  // entry 1: type 0, UDP (17), ver_size 62 = 36 + 2 + 24
  0x00, 0x11, 0x00, 0x3e,
  // flags: IP_VS_CONN_F_DROUTE 0x3 | NOOUTPUT 0x80 | IN_SEQ 0x400 | OUT_SEQ 0x200 = 0x683
  0x00, 0x00, 0x06, 0x83,
  // state 0 (UDP), cport 5353
  0x00, 0x00, 0x14, 0xe9,
  // vport 53, dport 53
  0x00, 0x35, 0x00, 0x35,
  // fwmark 0, timeout 300
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c,
  // caddr 198.18.0.9, vaddr 198.18.1.100, daddr 198.18.1.11
  0xc6, 0x12, 0x00, 0x09, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x01, 0x0b,
  // IPVS_OPT_SEQ_DATA (1), length 24
  0x01, 0x18,
  // in_seq: init_seq 1, delta 2, previous_delta 3; out_seq: 4, 5, 6
  0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
  0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06,
  // padding to 32-bit alignment before the next entry
  0x00, 0x00,
  // entry 2: template: type 0, TCP, ver_size 36
  0x00, 0x06, 0x00, 0x24,
  // flags TEMPLATE 0x1000 | NOOUTPUT 0x80 | DROUTE 0x3
  0x00, 0x00, 0x10, 0x83,
  // state 1 (IP_VS_CTPL_S_ASSURED), cport 0
  0x00, 0x01, 0x00, 0x00,
  // vport 80, dport 80
  0x00, 0x50, 0x00, 0x50,
  // fwmark 0, timeout 300
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c,
  // caddr 198.18.0.0 (the client's network), vaddr 198.18.1.100, daddr 198.18.1.11
  0xc6, 0x12, 0x00, 0x00, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x01, 0x0b,
]);

test('golden: a NAT conn entry is the kernel layout, byte for byte', () => {
  const b = new Uint8Array(1472);
  writeMesgHeader(b, 0, 7);
  // flags as the conn table holds them: HASHED (0x40) set, which never goes on the wire
  const size = appendConnV4(b, 0, IPPROTO_TCP, 0x40, 1, 40000, 80, 8080, 0, 900, ip('198.18.0.2'), ip('198.18.1.100'), ip('198.18.2.11'), null);
  assert.equal(size, 44);
  assert.deepEqual(b.subarray(0, size), GOLDEN_NAT);
});

test('golden: a conn with sequence data, padding, then a template', () => {
  const b = new Uint8Array(1472);
  writeMesgHeader(b, 0, 0);
  appendConnV4(b, 0, IPPROTO_UDP, 0x683, 0, 5353, 53, 53, 0, 300, ip('198.18.0.9'), ip('198.18.1.100'), ip('198.18.1.11'), Uint32Array.from([1, 2, 3, 4, 5, 6]));
  const size = appendConnV4(b, 0, IPPROTO_TCP, 0x1083, 1, 0, 80, 80, 0, 300, ip('198.18.0.0'), ip('198.18.1.100'), ip('198.18.1.11'), null);
  assert.deepEqual(b.subarray(0, size), GOLDEN_TWO);
});

function parseAll(b: Uint8Array, syncid = 0): { bad: number; conns: SyncConn[]; counts: Float64Array } {
  const counts = new Float64Array(SR.COUNT);
  const bad = checkMessage(b, 0, b.length, syncid);
  const conns: SyncConn[] = [];
  if (bad < 0) {
    forEachConn(b, 0, b.length, new SyncConn(), counts, () => -1, (c) => {
      const copy = Object.assign(new SyncConn(), c);
      conns.push(copy);
    });
  }
  return { bad, conns, counts };
}

test('the golden messages parse back to what was encoded', () => {
  const a = parseAll(GOLDEN_NAT, 7);
  assert.equal(a.bad, -1);
  assert.equal(a.conns.length, 1);
  const c = a.conns[0]!;
  assert.deepEqual([c.proto, c.flags, c.state, c.cport, c.vport, c.dport, c.timeout, c.caddr, c.vaddr, c.daddr],
    [6, 0, 1, 40000, 80, 8080, 900, ip('198.18.0.2'), ip('198.18.1.100'), ip('198.18.2.11')]);
  const two = parseAll(GOLDEN_TWO);
  assert.equal(two.bad, -1);
  assert.equal(two.conns.length, 2);
  assert.equal(two.conns[0]!.hasSeq, true);
  assert.equal(two.conns[1]!.flags, 0x1083);
  assert.equal(two.conns[1]!.cport, 0);
});

test('framing lies are refused whole, each reason counted', () => {
  const mut = (f: (b: Uint8Array) => void, src = GOLDEN_NAT) => {
    const b = Uint8Array.from(src);
    f(b);
    return b;
  };
  assert.equal(checkMessage(GOLDEN_NAT, 0, 3, 0), SR.SHORT);
  assert.equal(checkMessage(GOLDEN_NAT, 0, 40, 0), SR.BAD_SIZE); // header says 44
  assert.equal(parseAll(GOLDEN_NAT, 8).bad, SR.SYNCID);
  assert.equal(parseAll(GOLDEN_NAT, 0).bad, -1); // syncid 0 accepts any
  assert.equal(parseAll(mut((b) => (b[5] = 2))).bad, SR.VERSION);
  assert.equal(parseAll(mut((b) => (b[0] = 1))).bad, SR.VERSION); // a version-0 message
  assert.equal(parseAll(mut((b) => (b[4] = 2))).bad, SR.TRUNCATED); // nr_conns lies
  assert.equal(parseAll(mut((b) => (b[11] = 0x30))).bad, SR.TRUNCATED); // entry size beyond the message
  assert.equal(parseAll(mut((b) => (b[10] = 0x10))).bad, SR.ENTRY_VERSION);
  assert.equal(parseAll(mut((b) => (b[11] = 0x20))).bad, SR.BAD_ENTRY); // shorter than an entry
  assert.equal(parseAll(mut((b) => (b[8] = 4))).bad, SR.BAD_ENTRY); // unknown type
  const longer = new Uint8Array(48);
  longer.set(GOLDEN_NAT);
  longer[3] = 48;
  assert.equal(parseAll(longer).bad, SR.TRAILING);
  // An option whose length runs past the entry: corrupt.
  const opt = Uint8Array.from(GOLDEN_TWO);
  opt[45] = 0x40;
  assert.equal(parseAll(opt).bad, SR.BAD_ENTRY);
});

test('entry-level problems skip the entry, not the message', () => {
  const b = Uint8Array.from(GOLDEN_TWO);
  b[44] = 0x05; // the first entry's option becomes an unknown mandatory option
  const counts = new Float64Array(SR.COUNT);
  assert.equal(checkMessage(b, 0, b.length, 0), -1);
  const used: number[] = [];
  forEachConn(b, 0, b.length, new SyncConn(), counts, () => -1, (c) => used.push(c.proto));
  assert.deepEqual(used, [6]);
  assert.equal(counts[SR.OPTION], 1);
  // The same option marked optional (IPVS_OPT_F_PARAM) is skipped and the entry used.
  b[44] = 0x45;
  used.length = 0;
  forEachConn(b, 0, b.length, new SyncConn(), counts, () => -1, (c) => used.push(c.proto));
  assert.deepEqual(used, [17, 6]);
});

function backupIpvs(): Ipvs {
  const ipvs = new Ipvs({ connCapacity: 64, statsSlots: 64 });
  ipvs.addService({ proto: IPPROTO_TCP, addr: ip('198.18.1.100'), port: 80, sched: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  ipvs.addDest({ proto: IPPROTO_TCP, addr: ip('198.18.1.100'), port: 80 }, { addr: ip('198.18.2.11'), port: 8080, fwd: Fwd.Masq, weight: 1, uThreshold: 0, lThreshold: 0 });
  return ipvs;
}

test('fuzz: random and truncated messages never throw and install only conns of known real servers', () => {
  const ipvs = backupIpvs();
  const bk = new SyncBackup(ipvs, 0);
  const valid = (b: Uint8Array) => {
    bk.receive(b, 0, b.length);
    for (let i = ipvs.conns.next(0); i >= 0; i = ipvs.conns.next(i + 1)) {
      assert.equal(ipvs.conns.daddr[i], ip('198.18.2.11'));
      assert.equal(ipvs.conns.dport[i], 8080);
      assert.notEqual(ipvs.conns.dest[i], -1);
      assert.ok(ipvs.conns.state[i]! < 11);
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => valid(b)), { numRuns: 3000 });
  // Truncations and single-byte mutations of a real message.
  fc.assert(fc.property(fc.nat(GOLDEN_TWO.length), fc.nat(GOLDEN_TWO.length - 1), fc.integer({ min: 0, max: 255 }), (cut, at, v) => {
    const b = Uint8Array.from(GOLDEN_TWO);
    b[at] = v;
    valid(b.subarray(0, cut));
    valid(b);
  }), { numRuns: 3000 });
  // Random headers and entries that frame correctly, with random fields.
  fc.assert(fc.property(fc.array(fc.record({ proto: fc.integer({ min: 0, max: 255 }), flags: fc.nat(), state: fc.integer({ min: 0, max: 0xffff }),
    cport: fc.integer({ min: 0, max: 65535 }), dport: fc.constantFrom(8080, 80, 0), daddr: fc.constantFrom(ip('198.18.2.11'), ip('198.18.2.12')),
    timeout: fc.nat() }), { maxLength: 30 }), (es) => {
    const b = new Uint8Array(1472);
    writeMesgHeader(b, 0, 0);
    let size = 8;
    for (const e of es) size = appendConnV4(b, 0, e.proto, e.flags, e.state, e.cport, 80, e.dport, 0, e.timeout, ip('198.18.0.2'), ip('198.18.1.100'), e.daddr, null);
    valid(b.subarray(0, size));
  }), { numRuns: 500 });
  assert.ok(bk.drops[SR.NO_DEST]! > 0);
});
